"""The protected API, a FastAPI app mounted by Reflex under `/api`."""

from pingapp.api.app import create_api
from pingapp.api.verify import AccessToken, Claims, TokenVerifier, require_scopes, verifier_lifespan

__all__ = [
    "AccessToken",
    "Claims",
    "TokenVerifier",
    "create_api",
    "require_scopes",
    "verifier_lifespan",
]
