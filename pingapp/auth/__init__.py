"""The sign-in feature, on the application context: `state` (AuthState, the pages'
side), `routes` (/auth/login, /auth/session, /auth/backchannel-logout), `flow` (the
callback's steps, sign-out at the provider), `devices` (a session's browser and
network; ending another session). The library underneath is `pingapp.oidc`."""
