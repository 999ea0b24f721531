"""Benchmark: /api/public against /api/private (bearer and DPoP), served as deployed.

    .venv/bin/python bench/api_bench.py            # about two minutes; needs wrk

What it does, all on 127.0.0.1:

1. makes an RSA key and serves a discovery document and a JWKS for it from a
   small local issuer (so no provider is needed and nothing leaves the machine);
2. starts the backend the way it is deployed: `reflex run --env prod
   --backend-only` (granian, one worker), with AUTH_ISSUER pointing at that
   local issuer;
3. mints valid access tokens, and loads `/api/public` and `/api/private` with
   wrk (Debian's `wrk`) at the same concurrency, for two cases:
   - one token reused on every request (a user's token serving many calls);
   - a different token on each request: each request takes the next of 60,000
     distinct tokens (far more than the verified-token cache holds), so every
     request misses the cache and is verified in full (the worst case);
   - one DPoP-bound token (`cnf.jkt`) reused, sent as `Authorization: DPoP` with
     a fresh proof on every request: before each run, `--proofs` proofs are made
     (unique `jti`, `iat` just before the run, `ath` of the token) and each
     request takes the next one, never one seen before (a proof used twice
     would be refused as a replay and flag the run as invalid);
   public and private runs alternate, three rounds per case;
4. prints requests/s, p50 and p99 (medians of the rounds), the ratio
   private/public and the ratio DPoP private / bearer private (both with one
   token reused), with the load average: on 2 cores, anything else running
   makes the figures noisy.

Options: --duration, --rounds, --connections, --threads, --tokens, --proofs,
--baseline REF (the same runs against an earlier commit first, checked out by
`bench/baseline.py`: before / after in one run), --telemetry (this checkout once
more, with OpenTelemetry on: OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
receiver in this process, `tests/support/otlp.py`; it prints the cost per request
of telemetry, off -> on), and --server granian (the API app alone under granian,
no Reflex, for comparison with figures taken that way).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import baseline  # noqa: E402 - after the path
from bench.baseline import checkout  # noqa: E402
from pingapp.dpop import DPoPKey, make_proof  # noqa: E402
from tests.support.issuers import Issuer, new_key, start_server  # noqa: E402
from tests.support.net import answers, free_port, wait_until  # noqa: E402
from tests.support.otlp import OtlpReceiver  # noqa: E402
from tests.support.processes import stop_process_group  # noqa: E402

AUDIENCE = "urn:pingapp:bench"
KID = "bench-key"
#: The verified-token cache's size (AUTH_TOKEN_CACHE_SIZE's default).
CACHE_SIZE = 4096


# -- tokens ---------------------------------------------------------------------------------


def _mint(pem: bytes, issuer: str, count: int, jkt: str | None = None) -> list[str]:
    key = serialization.load_pem_private_key(pem, password=None)
    now = int(time.time())
    tokens = []
    for _ in range(count):
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": "bench|user",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "scope": "openid read:messages",
            "jti": uuid.uuid4().hex,
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        headers = {"kid": KID, "typ": "at+jwt"}
        tokens.append(jwt.encode(claims, key, algorithm="RS256", headers=headers))  # type: ignore[arg-type]
    return tokens


def mint_tokens(pem: bytes, issuer: str, count: int) -> list[str]:
    """`count` distinct valid tokens, signed on every core."""
    workers = os.cpu_count() or 1
    share = -(-count // workers)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_mint, [pem] * workers, [issuer] * workers, [share] * workers)
        return [token for part in parts for token in part][:count]


def _proofs(pem: bytes, url: str, token: str, count: int) -> list[str]:
    key = DPoPKey.from_pem(pem)
    return [make_proof(key, "GET", url, access_token=token) for _ in range(count)]


def make_proofs(key: DPoPKey, url: str, token: str, count: int) -> list[str]:
    """`count` proofs for `GET url` with `token`, each with its own `jti`, made now."""
    workers = os.cpu_count() or 1
    share = -(-count // workers)
    pem = key.to_pem()
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_proofs, *zip(*[(pem, url, token, share)] * workers, strict=True))
        return [proof for part in parts for proof in part][:count]


# -- the backend ---------------------------------------------------------------------------


def backend_command(server: str, port: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if server == "reflex":
        return [
            str(bin_dir / "reflex"),
            "run",
            "--env",
            "prod",
            "--backend-only",
            "--backend-port",
            str(port),
            "--loglevel",
            "warning",
        ]
    return [
        str(bin_dir / "granian"),
        "--interface",
        "asgi",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "pingapp.api:create_api",
    ]


@contextlib.contextmanager
def backend(
    server: str,
    issuer: str,
    port: int,
    log: Path,
    cache_size: int,
    root: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    env = {
        **os.environ,
        "AUTH_TOKEN_CACHE_SIZE": str(cache_size),
        "AUTH_ISSUER": issuer,
        "AUTH_AUDIENCE": AUDIENCE,
        # The API's public URL: what the DPoP proofs' `htu` names.
        "API_URL": f"http://127.0.0.1:{port}" + ("/api" if server == "reflex" else ""),
        "BACKEND_PORT": str(port),
        "BACKEND_HOST": "127.0.0.1",
        "GRANIAN_WORKERS": "1",
        "REFLEX_USE_SYSTEM_BUN": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
        **(extra_env or {}),
    }
    # Under Reflex the API is mounted at /api; alone, it serves from the root.
    api = f"http://127.0.0.1:{port}" + ("/api" if server == "reflex" else "")
    with log.open("wb") as out:
        process = subprocess.Popen(
            backend_command(server, port),
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                lambda: answers(f"{api}/public"),
                what=f"the backend at {api}",
                timeout=120,
                interval=0.3,
                alive=lambda: process.poll() is None,
                log=log,
            )
            yield api
        finally:
            # Our own child's process group: reflex starts granian under it.
            stop_process_group(process, timeout=15)


def get(url: str, token: str | None = None, proof: str | None = None) -> int:
    request = urllib.request.Request(url)  # noqa: S310 - 127.0.0.1 only
    if token:
        request.add_header("Authorization", f"{'DPoP' if proof else 'Bearer'} {token}")
    if proof:
        request.add_header("DPoP", proof)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# -- wrk ------------------------------------------------------------------------------------

REUSED_SCRIPT = """
wrk.headers["Authorization"] = "Bearer {token}"
"""

#: Each request takes the next token of the file, in a cycle; the warm-up run
#: starts half-way through, so the measured run does not reuse its tokens first.
ROTATING_SCRIPT = """
local tokens = {{}}
for line in io.lines("{path}") do tokens[#tokens + 1] = line end
local i = 0
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
init = function(args)
  -- args: start offset, number of wrk threads; each thread takes its own slice
  local share = math.floor(#tokens / (tonumber(args[2] or "1") or 1))
  i = (tonumber(args[1] or "0") or 0) + (id or 0) * share
end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, {headers})
end
"""

BEARER_HEADERS = '{["Authorization"] = "Bearer " .. tokens[i]}'


def dpop_headers(token: str) -> str:
    """The lines are proofs, each used once; the bound token is on every request."""
    return '{["Authorization"] = "DPoP ' + token + '", ["DPoP"] = tokens[i]}'


@dataclass
class Result:
    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    statuses_ok: bool
    requests: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    label: str,
    url: str,
    args: argparse.Namespace,
    script: Path | None = None,
    script_args: tuple[str, ...] = (),
) -> Result:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s"]
    command += ["--latency", "--timeout", "5s"]
    if script is not None:
        command += ["-s", str(script)]
    command += [url, "--", *script_args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    return Result(label, rps, p50, p99, "Non-2xx" not in output, requests)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark /api/public against /api/private.")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="public/private pairs per case")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--tokens", type=int, default=60_000, help="distinct tokens for the worst case"
    )
    parser.add_argument(
        "--proofs", type=int, default=40_000, help="new DPoP proofs made before each DPoP run"
    )
    parser.add_argument("--server", choices=["reflex", "granian"], default="reflex")
    parser.add_argument(
        "--cache-size", type=int, default=CACHE_SIZE, help="AUTH_TOKEN_CACHE_SIZE (0: no cache)"
    )
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="also measure this checkout with telemetry on (OTLP/HTTP to a local receiver)",
    )
    baseline.add_argument(parser)
    args = parser.parse_args()
    # (label, checkout, extra environment, kind): kind is "before", "off" or "on".
    setups: list[tuple[str, Path, dict[str, str], str]] = [("this checkout", ROOT, {}, "off")]
    if args.baseline:
        tree, commit = checkout(args.baseline)
        setups.insert(0, (f"{commit} (before)", tree, {}, "before"))
    receiver = OtlpReceiver(decode=False) if args.telemetry else None
    if receiver is not None:
        receiver.__enter__()
        telemetry_env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        }
        setups.append(("this checkout, telemetry on", ROOT, telemetry_env, "on"))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    if args.tokens <= args.cache_size:
        raise SystemExit(f"--tokens must exceed the cache size ({args.cache_size})")

    key = new_key(KID)
    local = Issuer(jwks={"keys": [key.jwk(alg="RS256")]})
    pem = key.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    work = Path(tempfile.mkdtemp(prefix="pingapp-bench-"))
    server = start_server(local)
    issuer = local.url
    try:
        started = time.perf_counter()
        tokens = mint_tokens(pem, issuer, args.tokens + 1)
        print(f"minted {len(tokens)} tokens in {time.perf_counter() - started:.1f} s")
        one, many = tokens[0], tokens[1:]
        tokens_file = work / "tokens.txt"
        tokens_file.write_text("\n".join(many) + "\n")
        one_lua = work / "one.lua"
        one_lua.write_text(REUSED_SCRIPT.format(token=one))
        many_lua = work / "many.lua"
        many_lua.write_text(ROTATING_SCRIPT.format(path=tokens_file, headers=BEARER_HEADERS))
        dpop_key = DPoPKey.generate()
        bound = _mint(pem, issuer, 1, jkt=dpop_key.jkt)[0]
        proofs_file = work / "proofs.txt"
        dpop_lua = work / "dpop.lua"
        dpop_lua.write_text(ROTATING_SCRIPT.format(path=proofs_file, headers=dpop_headers(bound)))

        mode = (
            "reflex run --env prod --backend-only (granian, 1 worker)"
            if args.server == "reflex"
            else "granian, 1 worker, the API app alone"
        )
        measured = []
        for setup, root, extra_env, kind in setups:
            port = free_port()
            print(f"backend, {setup}: {mode} on 127.0.0.1:{port}")
            with backend(
                args.server, issuer, port, work / "backend.log", args.cache_size, root, extra_env
            ) as api:
                assert get(f"{api}/private", one) == 200, "a valid token was refused"
                assert get(f"{api}/private", many[0] + "x") == 401
                assert get(f"{api}/private") == 401
                proof = make_proof(dpop_key, "GET", f"{api}/private", access_token=bound)
                assert get(f"{api}/private", bound, proof) == 200, "a valid proof was refused"
                assert get(f"{api}/private", bound, proof) == 401, "a replay was accepted"
                assert get(f"{api}/private", bound) == 401, "a bound token worked as Bearer"
                fresh = Proofs(
                    dpop_key, f"{api}/private", bound, args.proofs, proofs_file, args.threads
                )
                load_before = os.getloadavg()[0]
                cases = bench(api, args, one_lua, many_lua, (dpop_lua, fresh))
                measured.append((setup, cases, (load_before, os.getloadavg()[0]), kind))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if receiver is not None:
            receiver.__exit__()
    for setup, cases, load, _ in measured:
        report(setup, cases, args, load)
    by_kind = {kind: cases for _, cases, _, kind in measured}
    if "before" in by_kind:
        print("\nprivate/public, before -> after:")
        for before, after in zip(by_kind["before"], by_kind["off"], strict=True):
            ratios = [ratio(case) for case in (before, after)]
            print(f"  {before.label:<34} {ratios[0]:.2f} -> {ratios[1]:.2f}")
        print("\nrequests/s, before -> after (telemetry off):")
        compare(by_kind["before"], by_kind["off"])
    if "on" in by_kind:
        print("\ntelemetry off -> on (requests/s; cost per request = 1/rps on - 1/rps off,")
        print("one backend worker, CPU-bound; the receiver runs on the same machine):")
        compare(by_kind["off"], by_kind["on"])
        if receiver is not None:
            kib = receiver.received_bytes / 1024
            print(f"the receiver got {len(receiver.paths)} exports, {kib:.0f} KiB")


def compare(first: list[Case], second: list[Case]) -> None:
    """Requests/s of each case and side, and the difference in microseconds per request."""
    for one, two in zip(first, second, strict=True):
        for side in ("public", "private"):
            a = median([r.rps for r in getattr(one, side)])
            b = median([r.rps for r in getattr(two, side)])
            cost = (1 / b - 1 / a) * 1e6
            print(
                f"  {one.label:<34} {side:<8} {a:>8.0f} -> {b:>8.0f} req/s"
                f"  ({b / a - 1:+.1%}, {cost:+.0f} µs per request)"
            )


@dataclass
class Proofs:
    """Writes `count` new proofs to `path` before each DPoP run: none is ever reused."""

    key: DPoPKey
    url: str
    token: str
    count: int
    path: Path
    threads: int

    def renew(self) -> tuple[str, ...]:
        """New proofs; the script's arguments: from the first, a slice per wrk thread."""
        proofs = make_proofs(self.key, self.url, self.token, self.count)
        self.path.write_text("\n".join(proofs) + "\n")
        return ("0", str(self.threads))


@dataclass
class Case:
    label: str
    script: Path
    rotating: bool
    public: list[Result]
    private: list[Result]
    proofs: Proofs | None = None


def bench(
    api: str,
    args: argparse.Namespace,
    one_lua: Path,
    many_lua: Path,
    dpop: tuple[Path, Proofs],
) -> list[Case]:
    """Alternate public and private runs, `--rounds` times per case.

    Alternating keeps a slow moment of the machine from landing on one side of
    the ratio; the report takes the median of the rounds.
    """
    cases = [
        Case("one token reused", one_lua, False, [], []),
        Case("a different token every request", many_lua, True, [], []),
        Case("DPoP: one token, a new proof each", dpop[0], False, [], [], dpop[1]),
    ]
    offset = 0  # the rotating script continues where its last run stopped
    for case in cases:
        for round_ in range(args.rounds):
            for side, url in (("public", f"{api}/public"), ("private", f"{api}/private")):
                script_args: tuple[str, ...] = ()
                if case.rotating and side == "private":
                    script_args = (str(offset), str(args.threads))
                proofs = case.proofs if side == "private" else None
                if args.warmup and round_ == 0:
                    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
                    result = run_wrk(
                        side, url, warm, case.script, proofs.renew() if proofs else script_args
                    )
                    if script_args:
                        offset += result.requests
                        script_args = (str(offset), str(args.threads))
                if proofs is not None:
                    script_args = proofs.renew()
                result = run_wrk(side, url, args, case.script, script_args)
                if script_args:
                    offset += result.requests
                (case.public if side == "public" else case.private).append(result)
                print(
                    f"  {case.label:<34} {side:<8} {result.rps:>8.0f} req/s"
                    f"   p50 {result.p50_ms:6.2f} ms   p99 {result.p99_ms:6.2f} ms"
                    + ("" if result.statuses_ok else "   NON-2xx!"),
                    flush=True,
                )
    return cases


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(case: Case) -> float:
    """Private requests/s over public requests/s (medians of the rounds)."""
    return median([r.rps for r in case.private]) / median([r.rps for r in case.public])


def report(
    setup: str, cases: list[Case], args: argparse.Namespace, load: tuple[float, float]
) -> None:
    print(f"\n{setup}")
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds "
        f"(medians), public and private alternating, one backend worker ({args.server})"
    )
    print(
        f"{'case':<34} {'public/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'private/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}"
    )
    for case in cases:
        public = median([r.rps for r in case.public])
        private = median([r.rps for r in case.private])
        print(
            f"{case.label:<34} {public:>9.0f}"
            f" {median([r.p50_ms for r in case.public]):>7.2f}"
            f" {median([r.p99_ms for r in case.public]):>7.2f}"
            f" {private:>10.0f}"
            f" {median([r.p50_ms for r in case.private]):>7.2f}"
            f" {median([r.p99_ms for r in case.private]):>7.2f}"
            f" {private / public:>6.2f}"
        )
    bearer, dpop = (
        median([r.rps for r in cases[0].private]),
        median([r.rps for r in cases[2].private]),
    )
    print(f"DPoP private / bearer private (one token reused): {dpop / bearer:.2f}")
    rotating = cases[1].private
    requests = sum(r.requests for r in rotating)
    print(
        f"worst case: {requests} measured requests, each with the next of {args.tokens} "
        f"distinct tokens in turn (more than the cache's {args.cache_size}): no cache hit"
    )
    print(f"load average before/after: {load[0]:.2f} / {load[1]:.2f} (2 cores: >0.5 = noisy)")
    results = [r for case in cases for r in (*case.public, *case.private)]
    if not all(result.statuses_ok for result in results):
        raise SystemExit("some requests did not answer 2xx: the figures are not valid")


if __name__ == "__main__":
    main()
