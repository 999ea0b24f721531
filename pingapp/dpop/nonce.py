"""Server nonces for DPoP (RFC 9449 §8, §9), checked without storing them.

A nonce names a period of `lifetime` seconds and carries an HMAC of it under the
server's secret. `current()` is the nonce to send in `DPoP-Nonce`; `is_valid()` accepts
the current and the previous period's nonce, so a nonce stays good for `lifetime` to
twice `lifetime` seconds, and every backend that shares the secret agrees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

_PERIOD_BYTES = 8
_MAC_BYTES = 16
_LENGTH = len(base64.urlsafe_b64encode(bytes(_PERIOD_BYTES + _MAC_BYTES)))


class NonceSource:
    """Rotating, stateless server nonces; `is_valid` fits `check_proof(nonce=...)`."""

    def __init__(
        self,
        secret: bytes | None = None,
        *,
        lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        if len(self._secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        self._lifetime = lifetime
        self._clock = clock

    def _period(self) -> int:
        return int(self._clock() // self._lifetime)

    def _make(self, period: int) -> str:
        stamp = period.to_bytes(_PERIOD_BYTES, "big", signed=True)
        mac = hmac.new(self._secret, b"dpop-nonce:" + stamp, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(stamp + mac[:_MAC_BYTES]).decode()

    def current(self) -> str:
        """The nonce to hand out now (the `DPoP-Nonce` header)."""
        return self._make(self._period())

    def is_valid(self, nonce: str) -> bool:
        """Whether `nonce` is this or the previous period's nonce."""
        if not isinstance(nonce, str) or len(nonce) != _LENGTH or not nonce.isascii():
            return False
        try:
            stamp = base64.urlsafe_b64decode(nonce)[:_PERIOD_BYTES]
        except (binascii.Error, ValueError):
            return False
        period = int.from_bytes(stamp, "big", signed=True)
        if period not in (self._period(), self._period() - 1):
            return False
        return hmac.compare_digest(nonce.encode(), self._make(period).encode())
