"""The verification core: what checking a token needs, and nothing of the app.

- `jose`: strict compact JWS (one spelling per token, signatures checked);
- `jwks`: a key set's usable public signing keys, per algorithm;
- `keys`: `KeyStore`, one issuer's signing keys (single-flight, cooldown, stale keys
  refetched, withdrawn keys dropped);
- `singleflight`: one outbound fetch at a time per key, failures remembered.

Imports nothing from the rest of pingapp (tests/unit/test_layers.py).
"""
