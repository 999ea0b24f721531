"""The FastAPI sub-app: routes of the protected API.

It is mounted at `/api` (see `pingapp.pingapp`), so its routes are written
relative to that prefix and its OpenAPI page is `/api/docs`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel


class Message(BaseModel):
    """Every endpoint answers with one message."""

    message: str


router = APIRouter(tags=["messages"])


@router.get("/public", response_model=Message)
async def public() -> Message:
    """Open to everyone: no token needed."""
    return Message(
        message="Hello from a public endpoint! You don't need to be authenticated to see this."
    )


def create_api() -> FastAPI:
    """Build the API app; Reflex mounts it at `/api`."""
    api = FastAPI(
        title="pingapp API",
        summary="The protected API of the pingapp tutorial.",
        version="1.0.0",
        docs_url="/docs",
        redoc_url=None,
    )
    api.include_router(router)
    return api
