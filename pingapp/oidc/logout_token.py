"""What makes a JWT a Logout Token (OpenID Connect Back-Channel Logout 1.0, section
2.4), for both sides: the app checks them (`pingapp.oidc.id_token`) and the embedded
provider issues them (`pingapp.devidp.backchannel`).

A primitive: it imports nothing of the app.
"""

#: The `events` member that makes a JWT a Logout Token.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: Section 2.4: "explicitly typed ... `logout+jwt`".
LOGOUT_JWT_TYPE = "logout+jwt"
