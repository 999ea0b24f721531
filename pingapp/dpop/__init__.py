"""DPoP (RFC 9449): sender-constrained tokens, the parts a client, a provider and an
API all use.

- `DPoPKey`: a client's key (ES256 by default), its storage form, public JWK and `jkt`.
- `make_proof` / `check_proof` (`verify_proof` without the replay check): proofs.
- `MemoryReplayCache`, `StoreReplayCache`: "this `jti` was seen" for one process or
  for every backend on a shared store.
- `NonceSource`: stateless rotating server nonces (`DPoP-Nonce`).
- `DPoPError`: every refusal, with the RFC's error code.
- `NonceMemory`, `Prover`, `send_with_proof`, `retry_with_nonce`: a client's requests
  with proofs and the servers' nonces (`pingapp.dpop.client`).

This package's public API is what it imports here: code outside `pingapp/dpop/`
(pingapp's own modules included) imports these names from `pingapp.dpop`, never from
the submodule that defines them; only the submodules import one another.
"""

from pingapp.dpop.client import (
    NONCE_HEADER,
    NonceMemory,
    Prover,
    asks_for_nonce,
    retry_with_nonce,
    send_with_proof,
)
from pingapp.dpop.htu import normalize_htu
from pingapp.dpop.keys import DPoPKey, jwk_thumbprint
from pingapp.dpop.nonce import NonceSource
from pingapp.dpop.proof import (
    DEFAULT_ALGS,
    DEFAULT_IAT_SKEW,
    DEFAULT_IAT_WINDOW,
    INVALID_PROOF,
    PROOF_TYPE,
    USE_NONCE,
    DPoPError,
    VerifiedProof,
    check_proof,
    make_proof,
    token_hash,
    verify_proof,
)
from pingapp.dpop.replay import MemoryReplayCache, ReplayCache, StoreReplayCache

__all__ = [
    "DEFAULT_ALGS",
    "DEFAULT_IAT_SKEW",
    "DEFAULT_IAT_WINDOW",
    "INVALID_PROOF",
    "NONCE_HEADER",
    "PROOF_TYPE",
    "USE_NONCE",
    "DPoPError",
    "DPoPKey",
    "MemoryReplayCache",
    "NonceMemory",
    "NonceSource",
    "Prover",
    "ReplayCache",
    "StoreReplayCache",
    "VerifiedProof",
    "asks_for_nonce",
    "check_proof",
    "jwk_thumbprint",
    "make_proof",
    "normalize_htu",
    "retry_with_nonce",
    "send_with_proof",
    "token_hash",
    "verify_proof",
]
