"""The protected API, a FastAPI app mounted by Reflex under `/api`."""

from pingapp.api.app import create_api

__all__ = ["create_api"]
