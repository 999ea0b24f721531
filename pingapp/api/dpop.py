"""DPoP (RFC 9449) at the API: which requests must carry a proof, and the check.

A `DPoPPolicy` says whether plain bearer tokens are still accepted (`required`),
whether a server nonce is demanded (`nonces`), which proof algorithms are allowed,
how old (60 s) or early (5 s) a proof's `iat` may be, where seen `jti`s are
remembered (`replay`, with a bounded share per proof key) and the API's public URL,
from which each request's `htu` and the RFC 9728 metadata URL are built. The app's
policy comes from the settings (`build_dpop_policy`); `create_api(dpop=...)` sets
another.

`check_dpop` runs on every request sent with the DPoP scheme, after the token
itself is verified (the token may come from the verified-token cache; the proof
never does): exactly one `DPoP` header, every check of `pingapp.dpop.check_proof`,
`ath` of this token, and the proof key equal to the token's `cnf.jkt`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from pingapp.dpop import (
    DEFAULT_ALGS,
    DEFAULT_IAT_SKEW,
    DEFAULT_IAT_WINDOW,
    USE_NONCE,
    DPoPError,
    MemoryReplayCache,
    NonceSource,
    ReplayCache,
    StoreReplayCache,
    VerifiedProof,
    check_proof,
)
from pingapp.settings import Settings, get_settings
from pingapp.urls import origin_of

#: Where RFC 9728 §3.1 puts a resource's metadata: this, then the resource's path.
WELL_KNOWN = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True)
class DPoPPolicy:
    """How the API treats DPoP; see the module docstring."""

    #: Refuse plain bearer tokens (API_REQUIRE_DPOP).
    required: bool = False
    #: Demand a server nonce in every proof (API_DPOP_NONCE); None: no nonce.
    nonces: NonceSource | None = None
    replay: ReplayCache = field(default_factory=MemoryReplayCache)
    algs: tuple[str, ...] = DEFAULT_ALGS
    #: Seconds a proof's `iat` may lie in the past, and in the future (clock skew).
    iat_window: float = DEFAULT_IAT_WINDOW
    iat_skew: float = DEFAULT_IAT_SKEW
    #: The API's base URL as clients see it (behind a proxy, the public one).
    #: None: the request's own scheme, host and mount point.
    public_url: str | None = None
    clock: Callable[[], float] = time.time

    def api_url(self, request: Request) -> str:
        """The API's base URL: the public one, or this request's."""
        if self.public_url is not None:
            return self.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def request_url(self, request: Request) -> str:
        """The URL of `request` as the client saw it: what its proof's `htu` names."""
        # The path below the mount point (a mounted app's scope keeps the full path).
        path, root = request.scope["path"], request.scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        return self.api_url(request) + path

    def metadata_url(self, request: Request) -> str:
        """The RFC 9728 metadata URL of the API (§3.1: well-known part, then path)."""
        base = self.api_url(request)
        origin = origin_of(base)
        return origin + WELL_KNOWN + base[len(origin) :]


def bound_jkt(claims: Mapping[str, Any]) -> str | None:
    """The `cnf.jkt` a token is bound to; None when unbound. `ValueError` when
    `cnf` is there but says nothing this API understands (refuse the token)."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        raise ValueError("the token's cnf claim has no jkt")
    return jkt


def proof_of(request: Request) -> str:
    """The one `DPoP` header of `request` (RFC 9449 §4.3 checks 1 and 2)."""
    values = [value for name, value in request.scope["headers"] if name == b"dpop"]
    if len(values) != 1:
        raise DPoPError("send exactly one DPoP header")
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        raise DPoPError("proof is not one compact JWS") from None


async def check_dpop(policy: DPoPPolicy, request: Request, token: str, jkt: str) -> VerifiedProof:
    """The request's proof, checked in full for this `token` bound to `jkt`; else
    `DPoPError` (its `error` is `invalid_dpop_proof` or `use_dpop_nonce`)."""
    nonces = policy.nonces
    return await check_proof(
        proof_of(request),
        method=request.scope["method"],
        url=policy.request_url(request),
        replay=policy.replay,
        access_token=token,
        expected_jkt=jkt,
        nonce=nonces.is_valid if nonces is not None else None,
        allowed_algs=policy.algs,
        iat_window=policy.iat_window,
        iat_skew=policy.iat_skew,
        clock=policy.clock,
    )


def fresh_nonce(policy: DPoPPolicy, error: str | None, proof: VerifiedProof | None) -> str | None:
    """The `DPoP-Nonce` to send: with a `use_dpop_nonce` refusal, or after a proof
    whose nonce is no longer the current one (RFC 9449 §8.2)."""
    if policy.nonces is None:
        return None
    current = policy.nonces.current()
    if error == USE_NONCE or (proof is not None and proof.claims.get("nonce") != current):
        return current
    return None


def nonce_secret(configured: bytes | None) -> bytes | None:
    """The nonce key: derived from SESSION_ENCRYPTION_KEY (the same on every backend
    that shares sessions), or None for a random one per process."""
    if configured is None:
        return None
    return hashlib.sha256(b"pingapp api dpop nonce\x00" + configured).digest()


def build_dpop_policy(
    settings: Settings, *, backend: str, redis_url: str | None = None
) -> DPoPPolicy:
    """The app's policy, from the settings: API_REQUIRE_DPOP, API_DPOP_NONCE, the
    API's public URL, and the replay cache on Redis at `redis_url` when given."""
    replay: ReplayCache = MemoryReplayCache()
    if redis_url:
        from pingapp.oidc.store import RedisStore

        replay = StoreReplayCache(RedisStore(redis_url), prefix="api:dpop:jti:")
    nonces = None
    if settings.api_dpop_nonce:
        key = settings.session_encryption_key
        nonces = NonceSource(nonce_secret(key.get_secret_value().encode() if key else None))
    return DPoPPolicy(
        required=settings.api_require_dpop,
        nonces=nonces,
        replay=replay,
        public_url=settings.api_base_url(backend),
    )


#: What `create_api(dpop=...)` takes: a policy, or a function giving the app's.
PolicySource = DPoPPolicy | Callable[[], DPoPPolicy]


def dpop_policy_of(request: Request) -> DPoPPolicy:
    """The policy of the API serving `request` (`app.state.dpop_policy`: given to
    `create_api`, else built from the settings at its first request)."""
    state = request.app.state
    source: PolicySource | None = getattr(state, "dpop_policy", None)
    if source is None:
        from reflex.config import get_config

        from pingapp.urls import backend_url

        source = state.dpop_policy = build_dpop_policy(
            get_settings(), backend=backend_url(), redis_url=get_config().redis_url
        )
    return source() if callable(source) else source
