"""DPoP proofs (RFC 9449): make one for a request, check one in full.

`make_proof` signs a `dpop+jwt` for one HTTP request with a `DPoPKey`. `verify_proof`
runs every check of RFC 9449 §4.3 that needs no storage; `check_proof` adds the last
one, "this `jti` was not seen before", with a replay cache. Every refusal is a
`DPoPError` whose `error` is the RFC's code (`invalid_dpop_proof`, or `use_dpop_nonce`
when the server's nonce is missing or stale) and whose message names the failed check,
never the proof or the token.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWTError
from jwt.utils import base64url_encode

from pingapp.core.jose import decode_segment, signature_valid
from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.dpop.htu import normalize_htu
from pingapp.dpop.keys import (
    PRIVATE_MEMBERS,
    DPoPKey,
    jwk_thumbprint,
    thumbprint_members,
)
from pingapp.dpop.replay import ReplayCache

INVALID_PROOF = "invalid_dpop_proof"
USE_NONCE = "use_dpop_nonce"

#: The `typ` header every proof carries (RFC 9449 §4.2).
PROOF_TYPE = "dpop+jwt"

#: Algorithms accepted when the caller names none.
DEFAULT_ALGS = ("ES256", "ES384", "EdDSA", "RS256", "PS256")

#: Seconds a proof's `iat` may lie in the past of the verifier's clock ...
DEFAULT_IAT_WINDOW = 60.0
#: ... and in its future: clock skew only, so that a proof cannot be made now for use
#: later (RFC 9449, "DPoP Proof Pre-generation").
DEFAULT_IAT_SKEW = 5.0

#: Longer proofs are refused unread: an RSA-4096 proof is under 2,500 characters.
MAX_PROOF_LENGTH = 8192

_MAX_CLAIM_LENGTH = 2048

NonceCheck = str | Callable[[str], bool]


class DPoPError(Exception):
    """A refused proof: `error` is the RFC 9449 code, `description` what failed."""

    def __init__(self, description: str, error: str = INVALID_PROOF) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class _Key(NamedTuple):
    alg: str
    verifier: PyJWK
    jkt: str
    jwk: dict[str, str]


@dataclass(frozen=True)
class VerifiedProof:
    """What a valid proof says: its key's thumbprint, public JWK (the members the
    thumbprint covers), algorithm and claims."""

    jkt: str
    jwk: dict[str, str]
    alg: str
    claims: dict[str, Any]


def token_hash(access_token: str) -> str:
    """The `ath` of an access token: base64url of its SHA-256 (RFC 9449 §4.2)."""
    return base64url_encode(hashlib.sha256(access_token.encode()).digest()).decode()


def make_proof(
    key: DPoPKey,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    now: float | None = None,
) -> str:
    """A fresh proof for `method url` (with `ath` when a token goes with it)."""
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": method,
        "htu": normalize_htu(url),
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    headers = {"typ": PROOF_TYPE, "jwk": key.public_jwk}
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=headers)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode(errors="surrogatepass"), expected.encode(errors="surrogatepass")
    )


@functools.lru_cache(maxsize=1024)
def _load_key(alg: str, public: tuple[tuple[str, str], ...]) -> tuple[PyJWK, str]:
    """The verifying key and thumbprint of a public JWK. A client signs every proof with
    the same key, so this runs once per key rather than once per proof."""
    jwk = dict(public)
    key = PyJWK(jwk, alg)
    if key.Algorithm.check_key_length(key.key):  # e.g. RSA under 2048 bits
        msg = "key too short"
        raise ValueError(msg)
    return key, jwk_thumbprint(jwk)


def _public_key(header: Mapping[str, Any], allowed_algs: Collection[str]) -> _Key:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs or alg not in ASYMMETRIC_ALGORITHMS:
        raise DPoPError("alg is not an allowed asymmetric algorithm")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise DPoPError("jwk header missing")
    if PRIVATE_MEMBERS & jwk.keys():
        raise DPoPError("jwk holds a private key")
    members = thumbprint_members(jwk)
    if members is None or not all(isinstance(jwk.get(name), str) for name in members):
        raise DPoPError("jwk is not a public EC, OKP or RSA key")
    public = tuple((name, jwk[name]) for name in members)
    try:
        key, jkt = _load_key(alg, public)
    except (PyJWTError, ValueError, TypeError):
        raise DPoPError("jwk does not fit alg") from None
    return _Key(alg, key, jkt, dict(public))


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_CLAIM_LENGTH:
        raise DPoPError(f"{name} missing or malformed")
    return value


def _iat(claims: Mapping[str, Any]) -> float:
    value = claims.get("iat")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < 2**53  # also refuses NaN and infinities
    ):
        raise DPoPError("iat missing or malformed")
    return float(value)


def _canonical_segment(segment: str) -> bytes:
    """One JWS segment's bytes; DPoPError unless it is canonical unpadded base64url."""
    try:
        return decode_segment(segment)
    except ValueError:
        raise DPoPError("proof is not one compact JWS") from None


def _decode(proof: object, allowed_algs: Collection[str]) -> tuple[_Key, dict[str, Any]]:
    if not isinstance(proof, str) or not 0 < len(proof) <= MAX_PROOF_LENGTH:
        raise DPoPError("proof missing or too long")
    if not proof.isascii() or proof.count(".") != 2:
        raise DPoPError("proof is not one compact JWS")
    # Every segment is strict, canonical base64url (no padding, no stray bits), so a
    # proof has exactly one encoding; the key from the header checks the signature.
    try:
        header = json.loads(_canonical_segment(proof.partition(".")[0]))
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict):
        raise DPoPError("proof is not one compact JWS")
    if header.get("typ") != PROOF_TYPE:
        raise DPoPError("typ is not dpop+jwt")
    if "crit" in header or "b64" in header:  # a proof needs no JWS extension (RFC 7515 §4.1.11)
        raise DPoPError("proof uses a JWS extension")
    if not isinstance(header.get("kid", ""), str):
        raise DPoPError("kid is not a string")
    key = _public_key(header, allowed_algs)
    payload = _canonical_segment(proof.split(".")[1])
    if not signature_valid(proof, key.verifier):
        raise DPoPError("signature invalid")
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise DPoPError("claims are not a JSON object")
    return key, claims


def verify_proof(
    proof: object,
    *,
    method: str,
    url: str,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    nonce: NonceCheck | None = None,
    allowed_algs: Collection[str] = DEFAULT_ALGS,
    iat_window: float = DEFAULT_IAT_WINDOW,
    iat_skew: float = DEFAULT_IAT_SKEW,
    clock: Callable[[], float] = time.time,
) -> VerifiedProof:
    """Every RFC 9449 §4.3 check but replay (see `check_proof`).

    `url` is the request's URL as the client saw it (the public URL behind a proxy);
    `nonce` is the nonce the server requires, or a function telling whether a nonce is
    still good (`NonceSource.is_valid`); `expected_jkt` the token's `cnf.jkt`. The
    proof's `iat` is at most `iat_window` seconds old and `iat_skew` ahead of `clock`.
    """
    key, claims = _decode(proof, allowed_algs)
    _string_claim(claims, "jti")
    if _string_claim(claims, "htm") != method:
        raise DPoPError("htm does not match the request")
    try:
        same_url = normalize_htu(_string_claim(claims, "htu")) == normalize_htu(url)
    except ValueError:
        same_url = False
    if not same_url:
        raise DPoPError("htu does not match the request")
    if not -iat_skew <= clock() - _iat(claims) <= iat_window:
        raise DPoPError("iat is outside the accepted window")
    if nonce is not None:
        given = claims.get("nonce")
        good = isinstance(given, str) and (
            _same(given, nonce) if isinstance(nonce, str) else nonce(given)
        )
        if not good:
            raise DPoPError("a fresh server nonce is required", USE_NONCE)
    if access_token is not None and not _same(
        _string_claim(claims, "ath"), token_hash(access_token)
    ):
        raise DPoPError("ath does not match the access token")
    if expected_jkt is not None and not _same(key.jkt, expected_jkt):
        raise DPoPError("proof key does not match the token's binding")
    return VerifiedProof(jkt=key.jkt, jwk=key.jwk, alg=key.alg, claims=claims)


async def check_proof(
    proof: object,
    *,
    method: str,
    url: str,
    replay: ReplayCache,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    nonce: NonceCheck | None = None,
    allowed_algs: Collection[str] = DEFAULT_ALGS,
    iat_window: float = DEFAULT_IAT_WINDOW,
    iat_skew: float = DEFAULT_IAT_SKEW,
    clock: Callable[[], float] = time.time,
) -> VerifiedProof:
    """`verify_proof`, then refuse a `jti` already seen from this key.

    The `jti` is remembered until its proof's `iat` leaves the window, so a replay is
    caught for as long as the proof would otherwise be accepted. It is recorded for
    the proof's key (`jkt`), so that a replay cache can bound what one key holds.
    """
    verified = verify_proof(
        proof,
        method=method,
        url=url,
        access_token=access_token,
        expected_jkt=expected_jkt,
        nonce=nonce,
        allowed_algs=allowed_algs,
        iat_window=iat_window,
        iat_skew=iat_skew,
        clock=clock,
    )
    claims = verified.claims
    # A replay computes the same expiry, whenever it comes.
    expires_at = claims["iat"] + iat_window + 1
    key = hashlib.sha256(f"{verified.jkt} {claims['jti']}".encode(errors="surrogatepass"))
    if not await replay.first_use(key.hexdigest(), expires_at, verified.jkt):
        raise DPoPError("proof already used")
    return verified
