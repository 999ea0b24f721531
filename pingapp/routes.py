"""The app's page routes, in one place."""

HOME = "/"
PING = "/ping"
PROFILE = "/profile"
CALLBACK = "/callback"
