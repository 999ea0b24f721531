"""The sign-in library: OpenID Connect as a relying party, without Reflex or the app.

- `discovery`: the provider's metadata and its checks; `client`: `OIDCClient` (PAR,
  code exchange, refresh, revocation, userinfo, logout URL); `login`: the
  authorization request; `forms`: token and PAR posts; `id_token`, `logout_token`:
  ID and Logout Token checks; `dpop`: the sign-in's DPoP key and binding;
- `session`, `store`, `cookies`: the vault of sessions, pending logins and tickets
  (encrypted, on disk or Redis) and the cookies that name them; `refresh`: a usable
  access token as an outcome;
- `errors`: what a failed sign-in tells the user.

The sign-in feature on top of the app context (pages' state, the /auth routes, the
callback's steps) is `pingapp.auth`.
"""
