"""DPoP keys: generate one, store it, show its public JWK and its RFC 7638 thumbprint.

A `DPoPKey` is the private key a client signs its proofs with. It is kept server-side
(with the sign-in session, encrypted at rest by whoever stores it): `to_json()` and
`to_pem()` give the private key for that storage, `from_json()` / `from_pem()` read it
back. `public_jwk` goes into every proof's header, and `jkt` (its thumbprint) is what an
access token is bound to (`cnf.jkt`).

PyJWT converts keys to and from JWK; joserfc knows which members of each key type a
thumbprint covers and computes it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey, thumbprint
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import PyJWTError

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS

#: JWK members that only a private or symmetric key has (RFC 7518 §6, RFC 8037 §2).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

#: The members a thumbprint covers, per key type (RFC 7638 §3.2), as joserfc lists them.
THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    key_class.key_type: (
        *sorted(name for name, param in key_class.value_registry.items() if param.required),
        "kty",
    )
    for key_class in (ECKey, OKPKey, RSAKey)
}

_ALGORITHMS = get_default_algorithms()

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

#: How to make a new private key for each algorithm `DPoPKey.generate` offers.
_GENERATORS: dict[str, Callable[[], PrivateKey]] = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ES512": lambda: ec.generate_private_key(ec.SECP521R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "PS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}

#: The algorithm a stored key without an `alg` is used with.
_EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def thumbprint_members(jwk: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The members `jwk_thumbprint` covers for this JWK's `kty`; None for another kty."""
    kty = jwk.get("kty")
    return THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint (base64url) of a public JWK: the `jkt`.

    Raises `ValueError` for a key type other than EC, OKP or RSA, or a missing member.
    """
    members = thumbprint_members(jwk)
    if members is None:
        raise ValueError("unsupported key type")
    try:
        return thumbprint({name: jwk[name] for name in members})
    except KeyError:
        raise ValueError("a required key member is missing") from None


def _default_alg(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGS:
        return _EC_ALGS[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise ValueError("not a private EC (P-256/384/521), Ed25519 or RSA key")


class DPoPKey:
    """A private key and the algorithm its proofs are signed with."""

    def __init__(self, private_key: PrivateKey, alg: str | None = None) -> None:
        alg = alg or _default_alg(private_key)
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"unsupported DPoP algorithm {alg!r}")
        self.private_key = private_key
        self.alg = alg
        # Fails now, not at the first proof, when the key does not fit the algorithm.
        try:
            _ALGORITHMS[alg].prepare_key(private_key)
        except (PyJWTError, TypeError, ValueError):
            raise ValueError(f"this key cannot sign {alg}") from None

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A new key: ES256 by default; also ES384, ES512, EdDSA (Ed25519), RS256, PS256."""
        if alg not in _GENERATORS:
            raise ValueError(f"cannot generate a key for {alg!r}")
        return cls(_GENERATORS[alg](), alg)

    @cached_property
    def public_jwk(self) -> dict[str, str]:
        """The public JWK put in each proof's header: only the members a verifier needs."""
        full = _ALGORITHMS[self.alg].to_jwk(self.private_key.public_key(), as_dict=True)
        return {name: full[name] for name in THUMBPRINT_MEMBERS[full["kty"]]}

    @cached_property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint, as in `cnf.jkt` of a token bound to it."""
        return jwk_thumbprint(self.public_jwk)

    def private_jwk(self) -> dict[str, Any]:
        """The private JWK with its `alg`: a secret, for encrypted storage only."""
        jwk = _ALGORITHMS[self.alg].to_jwk(self.private_key, as_dict=True)
        jwk.pop("key_ops", None)
        return {**jwk, "alg": self.alg}

    def to_json(self) -> str:
        """`private_jwk()` as JSON text (a secret)."""
        return json.dumps(self.private_jwk(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> DPoPKey:
        """The key `to_json` wrote; `ValueError` when it is not a private key we use.

        The same text gives the same key object (keys are never changed): a session's
        key is read on every call it makes, and parsing a private key costs more
        than signing a proof with it."""
        return _key_from_json(text.decode() if isinstance(text, bytes) else text)

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS #8 PEM (a secret: encrypt it at rest)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes, alg: str | None = None) -> DPoPKey:
        """A PEM private key; `alg` defaults to the key's usual one (RS256 for RSA)."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, PrivateKey):
            raise ValueError("not a private EC, Ed25519 or RSA key")
        return cls(key, alg)

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self.alg!r}, jkt={self.jkt!r})"


@functools.lru_cache(maxsize=4096)
def _key_from_json(text: str) -> DPoPKey:
    """`DPoPKey.from_json`, remembered for the last 4,096 keys (parse failures are not)."""
    try:
        jwk = json.loads(text)
    except ValueError:
        raise ValueError("not a JSON Web Key") from None
    if not isinstance(jwk, dict) or not isinstance(jwk.get("alg"), str):
        raise ValueError("a stored DPoP key needs its alg")
    alg = jwk["alg"]
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"unsupported DPoP algorithm {alg!r}")
    try:
        key = _ALGORITHMS[alg].from_jwk(jwk)
    except (PyJWTError, ValueError, TypeError, KeyError) as error:
        raise ValueError("not a usable private JWK") from error
    if not isinstance(key, PrivateKey):
        raise ValueError("the JWK holds no private key")
    return DPoPKey(key, alg)
