"""The protected API, a FastAPI app mounted by Reflex under `/api`.

`app` the routes and the docs page; `security` the FastAPI dependencies and the
OpenAPI scheme; `dpop` the DPoP policy and proof check; `metadata` the RFC 9728
document; `verifier` the claim checks and the verified-token cache; `jws`
reading the token itself; `errors` the RFC 6750 answers. The issuer's keys are
held by `pingapp.core.keys.KeyStore`.

The names below are the API's public interface for code outside `pingapp/` (tests,
a second API built the same way). pingapp's own modules import each name from the
module that defines it (`pingapp.api.app.create_api`), never through this package.
"""

from pingapp.api.app import create_api
from pingapp.api.dpop import DPoPPolicy
from pingapp.api.metadata import well_known_route
from pingapp.api.security import VerifiedToken, require_scopes
from pingapp.api.verifier import AccessToken, TokenVerifier

__all__ = [
    "AccessToken",
    "DPoPPolicy",
    "TokenVerifier",
    "VerifiedToken",
    "create_api",
    "require_scopes",
    "well_known_route",
]
