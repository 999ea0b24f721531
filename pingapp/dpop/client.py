"""The client's side of DPoP (RFC 9449) over HTTP: the servers' nonces, and requests
that carry a proof.

- `NonceMemory`: the latest `DPoP-Nonce` each origin sent (provider and API).
- `asks_for_nonce`: whether an answer asks for a proof with the server's nonce;
  `retry_with_nonce`: remember the nonce and decide the one retry with it.
- `Prover`: a key and the nonces; makes each request's proof.
- `send_with_proof`: one request with a proof (and `Authorization: DPoP` when a
  token goes along), sent once more with the server's nonce on `use_dpop_nonce`.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx2

from pingapp.dpop.keys import DPoPKey
from pingapp.dpop.proof import USE_NONCE, make_proof
from pingapp.urls import origin_of
from pingapp.web.challenges import challenge_error

NONCE_HEADER = "DPoP-Nonce"
#: A nonce longer than this is not remembered (a server's nonce is short).
MAX_NONCE_LENGTH = 512


class NonceMemory:
    """The latest `DPoP-Nonce` each origin sent, for its next proof (bounded)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._nonces: collections.OrderedDict[str, str] = collections.OrderedDict()

    def get(self, url: str | httpx2.URL) -> str | None:
        return self._nonces.get(origin_of(str(url)))

    def learn(self, url: str | httpx2.URL, response: httpx2.Response) -> None:
        """Remember the nonce `response` (from `url`) carries, if any."""
        nonce = response.headers.get(NONCE_HEADER)
        if not nonce or len(nonce) > MAX_NONCE_LENGTH:
            return
        origin = origin_of(str(url))
        self._nonces[origin] = nonce
        self._nonces.move_to_end(origin)
        while len(self._nonces) > self.limit:
            self._nonces.popitem(last=False)


def asks_for_nonce(response: httpx2.Response) -> bool:
    """Whether the server wants a proof with its nonce (`use_dpop_nonce`, RFC 9449
    sections 8 and 9): a 400 whose JSON says so (token endpoint) or a 401 whose DPoP
    challenge does (a resource). The nonce must come with it."""
    if not response.headers.get(NONCE_HEADER):
        return False
    if response.status_code == httpx2.codes.UNAUTHORIZED:
        return challenge_error(response, "dpop") == USE_NONCE
    if response.status_code != httpx2.codes.BAD_REQUEST:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == USE_NONCE


async def retry_with_nonce(
    url: str | httpx2.URL, response: httpx2.Response, nonces: NonceMemory
) -> bool:
    """After an answer to a request that carried a proof: remember the server's nonce
    for `url`'s origin, and whether to send that request once more with it (it asked:
    `asks_for_nonce`; a 400's JSON body is read for that). The one place that decides a
    DPoP nonce retry: `send_with_proof` and `pingapp.outbound.http.TokenAuth` both ask here."""
    nonces.learn(url, response)
    if response.status_code == httpx2.codes.BAD_REQUEST:
        await response.aread()
    return asks_for_nonce(response)


@dataclasses.dataclass(frozen=True)
class Prover:
    """One session's key and the process's nonces: makes a request's proof."""

    key: DPoPKey
    nonces: NonceMemory

    def proof(self, method: str, url: str | httpx2.URL, access_token: str | None = None) -> str:
        """A fresh proof for `method url` (the query and fragment are not part of `htu`)."""
        url = str(url)
        return make_proof(
            self.key, method, url, access_token=access_token, nonce=self.nonces.get(url)
        )


async def send_with_proof(
    http: httpx2.AsyncClient,
    method: str,
    url: str,
    prover: Prover,
    *,
    access_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx2.Response:
    """Send with a proof (and `Authorization: DPoP` when `access_token` is given);
    once more with the server's nonce when it answers `use_dpop_nonce`."""
    response: httpx2.Response | None = None
    for _ in range(2):
        sent = {**(headers or {}), "DPoP": prover.proof(method, url, access_token)}
        if access_token is not None:
            sent["Authorization"] = f"DPoP {access_token}"
        response = await http.request(method, url, headers=sent, **kwargs)
        if not await retry_with_nonce(url, response, prover.nonces):
            break
    assert response is not None
    return response
