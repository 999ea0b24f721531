"""What a JWKS document offers: its usable public signing keys, per algorithm.

Kept: keys for signatures (`use` absent or `sig`) whose type fits an allowed
asymmetric algorithm (the JWK's own `alg`, or every algorithm its `kty` and
`crv` can do). Skipped, with a log line and never an error: encryption keys,
secrets (`oct`), keys published with their private part, RSA keys shorter than
2048 bits, and anything PyJWT cannot load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Set
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

log = logging.getLogger(__name__)

#: Which key types can verify which algorithm, for JWKs that carry no `alg`.
ALGORITHMS_BY_KEY_TYPE: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}
#: Every algorithm a key may be used for: asymmetric signatures only (never `none`,
#: never `HS*`), for the provider's tokens and for DPoP proofs alike.
ASYMMETRIC_ALGORITHMS = frozenset().union(*ALGORITHMS_BY_KEY_TYPE.values())
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_MIN_RSA_BITS = 2048


def asymmetric_only(algorithms: Iterable[str]) -> frozenset[str]:
    """`algorithms` as a set; `ValueError` for `none` (in any casing) and `HS*`
    (RFC 8725 section 3.1-3.2: no unsigned tokens, no RS/HS key confusion)."""
    names = frozenset(algorithms)
    for name in names:
        if name.lower() == "none" or name.upper().startswith("HS"):
            msg = f"{name} is not allowed: only asymmetric signatures are verified"
            raise ValueError(msg)
    return names


#: A key's name in a key set: its `kid` (None when the JWK has none) and an algorithm.
KeyId = tuple[str | None, str]


def signing_keys(document: object, algorithms: Set[str]) -> dict[KeyId, tuple[PyJWK, str]]:
    """Each usable key of `document` for each of `algorithms` it can verify, with a
    fingerprint of its JWK (equal fingerprints: the same key). `ValueError` when
    the document is not a key set at all."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        msg = "the JWKS document has no 'keys' list"
        raise ValueError(msg)
    keys: dict[KeyId, tuple[PyJWK, str]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
            continue  # encryption keys and (wrongly published) private keys
        kid = jwk.get("kid")
        kty, declared = jwk.get("kty"), jwk.get("alg")
        if (
            (kid is not None and not isinstance(kid, str))
            or not isinstance(kty, str)
            or not isinstance(declared, str | None)
        ):
            continue
        for alg in _algorithms_for(kty, declared, jwk.get("crv"), algorithms):
            key = _pyjwk(jwk, alg, kid)
            if key is not None:
                keys[(kid, alg)] = (key, json.dumps(jwk, sort_keys=True))
    return keys


def _algorithms_for(kty: str, declared: str | None, crv: object, allowed: Set[str]) -> set[str]:
    if declared is not None:
        return {declared} & allowed
    found = ALGORITHMS_BY_KEY_TYPE.get(kty, frozenset()) & allowed
    if kty == "EC":
        return {alg for alg in found if _EC_CURVES[alg] == crv}
    return set(found)


def _pyjwk(jwk: dict[str, Any], alg: str, kid: str | None) -> PyJWK | None:
    """`jwk` as a key for `alg`, or None (logged) when it is unusable or too weak."""
    try:
        key = PyJWK(jwk, algorithm=alg)
    except (PyJWTError, ValueError, TypeError, KeyError):
        log.warning("JWKS: skipped an unusable key (kid %r)", kid)
        return None
    size = getattr(key.key, "key_size", None)
    if jwk.get("kty") == "RSA" and (size is None or size < _MIN_RSA_BITS):
        log.warning("JWKS: skipped an RSA key shorter than 2048 bits (kid %r)", kid)
        return None
    return key
