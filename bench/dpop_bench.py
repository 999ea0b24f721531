"""Benchmark: the cost of one DPoP proof, made and checked, per algorithm.

    .venv/bin/python bench/dpop_bench.py          # a few seconds

For each algorithm (ES256 and EdDSA by default) it times, in this process:

- `make_proof`: a new proof for a request with an access token (`ath`);
- `verify_proof`: every RFC 9449 check but replay (the signature check dominates);
- `check_proof`: the same plus the in-memory replay cache (each proof is new).

Each figure is the median of several rounds, in microseconds per call. The API pays
`check_proof` once per DPoP request on top of verifying the access token.

Options: --algs, --count (calls per round), --rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.dpop import (
    DPoPKey,
    MemoryReplayCache,
    check_proof,
    make_proof,
    verify_proof,
)

URL = "https://api.example.org/api/private"
TOKEN = "a" * 800  # about the size of a signed access token


def per_call(run: Callable[[], object], count: int, rounds: int) -> float:
    """Median over `rounds` of the microseconds one call of `run` takes."""
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            run()
        timings.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(timings)


def bench_alg(alg: str, count: int, rounds: int) -> tuple[float, float, float]:
    """Microseconds per make_proof, verify_proof and check_proof for one algorithm."""
    key = DPoPKey.generate(alg)
    checks = {
        "method": "GET",
        "url": URL,
        "access_token": TOKEN,
        "allowed_algs": ASYMMETRIC_ALGORITHMS,
    }
    make = per_call(lambda: make_proof(key, "GET", URL, access_token=TOKEN), count, rounds)

    # verify_proof keeps no state: the same few proofs can be checked again and again.
    again = itertools.cycle([make_proof(key, "GET", URL, access_token=TOKEN) for _ in range(16)])
    verify = per_call(lambda: verify_proof(next(again), **checks), count, rounds)

    # check_proof remembers each jti: every call gets a proof it has not seen.
    fresh = [make_proof(key, "GET", URL, access_token=TOKEN) for _ in range(count * rounds)]
    check = asyncio.run(per_check(fresh, checks, count, rounds))
    return make, verify, check


async def per_check(proofs: list[str], checks: dict[str, Any], count: int, rounds: int) -> float:
    """Median over `rounds` of the microseconds one `check_proof` takes, in one loop."""
    cache, timings, unseen = MemoryReplayCache(), [], iter(proofs)
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(count):
            await check_proof(next(unseen), replay=cache, **checks)
        timings.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description="Microseconds per DPoP proof made and checked.")
    parser.add_argument("--algs", default="ES256,EdDSA", help="comma-separated algorithms")
    parser.add_argument("--count", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median is shown)")
    args = parser.parse_args()
    print(f"{'alg':<8}{'make_proof':>14}{'verify_proof':>16}{'check_proof':>15}   (µs per call)")
    for alg in args.algs.split(","):
        make, verify, check = bench_alg(alg, args.count, args.rounds)
        print(f"{alg:<8}{make:>14.1f}{verify:>16.1f}{check:>15.1f}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
