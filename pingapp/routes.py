"""The app's page routes, the backend's mount points and the sign-in's HTTP hops, in
one place."""

HOME = "/"
PING = "/ping"
PROFILE = "/profile"
CALLBACK = "/callback"

#: Where the protected API is mounted on the backend (`pingapp.api`).
API = "/api"
#: Where the embedded provider is mounted on the backend (`pingapp.devidp`): its
#: issuer is the backend's URL and this path.
IDP = "/idp"
#: Where the sign-in's HTTP routes are mounted (`pingapp.auth.routes`).
AUTH = "/auth"
#: The login step: Log In is a link here (it sets the login cookie, goes to the provider).
LOGIN = AUTH + "/login"
#: After the callback: trades a one-time ticket for the session cookie.
SESSION_HOP = AUTH + "/session"
#: Where the provider posts Logout Tokens (OpenID Connect Back-Channel Logout 1.0).
BACKCHANNEL_LOGOUT = AUTH + "/backchannel-logout"
