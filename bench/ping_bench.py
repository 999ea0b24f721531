"""Click-to-screen time of the pings, in real Chromium, against the app in prod mode.

    .venv/bin/python bench/ping_bench.py [--clicks 300] [--warmup 30]
                                         [--spinner-delays 0,0.1] [--url URL]
                                         [--baseline REF] [--telemetry]

Without --url it starts `make prod` on a free port once per PING_SPINNER_DELAY in
`--spinner-delays` (0: the spinner update is sent before every answer, as before
that setting existed; 0.1: the default, one update for an answer faster than that),
and stops it afterwards. With --baseline, an earlier commit (checked out by
`bench/baseline.py`) is measured first, with its defaults: before / after in one run.
With --telemetry, this checkout is measured once more with OpenTelemetry on (the last
spinner delay, OTEL_EXPORTER_OTLP_ENDPOINT at an OTLP/HTTP receiver in this process,
`tests/support/otlp.py`), and the cost per ping, off -> on, is printed.
In each it signs in through the embedded provider, then
measures, in the same page:

- `fetch()`: a same-origin `fetch("/api/public")` whose JSON message is written into
  the page: what the tutorial's single-page app does, the floor for any click;
- `ping-public` and `ping-private`: a click on the button, until the page shows the
  answer (`data-answer` of `#ping-answer` counts answers, so the same message twice
  is still seen), timed by a MutationObserver.

Each runs `--clicks` times after `--warmup` unmeasured ones. The server-side time of
each ping (the handler's httpx call, shown in `ping-timing`) is collected too. It
prints p50 / p95 / p99 for each, and each ping's p50 and p99 as a multiple of
`fetch()`'s.

It drives Chromium with Playwright: run `make install-dev` first (the test tools,
Debian's Chromium); `make install` alone is not enough.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baseline
from bench.baseline import ROOT, checkout, wait_for_quiet
from tests.support.app import start_app
from tests.support.browser import launch, sign_in
from tests.support.otlp import OtlpReceiver

# Runs in the page: click `button` n times; for each, the time until the page shows
# the next answer, and the server time from `ping-timing`.
MEASURE = """
async ([buttonId, n]) => {
  const button = document.getElementById(buttonId);
  const region = document.getElementById("ping-answer");
  const message = () => document.getElementById("ping-message");
  // Pages from before the answer counter (a --baseline) sent two updates per ping:
  // the message emptied and busy, then the answer; count the second one.
  let seenBusy = false, counted = 0;
  const answers = () => {
    if (region) return Number(region.dataset.answer || 0);
    const busy = message().getAttribute("aria-busy") === "true" || !message().textContent;
    if (busy) seenBusy = true;
    else if (seenBusy) { seenBusy = false; counted += 1; }
    return counted;
  };
  // Resolves as soon as a DOM mutation (or the current DOM) satisfies `test`.
  const until = (test) => new Promise((resolve) => {
    if (test()) return resolve();
    const observer = new MutationObserver(() => {
      if (test()) { observer.disconnect(); resolve(); }
    });
    observer.observe(document.body, {subtree: true, childList: true,
                                     characterData: true, attributes: true});
  });
  const clientMs = [], serverMs = [];
  for (let i = 0; i < n; i++) {
    const before = answers();
    const started = performance.now();
    button.click();
    await until(() => answers() > before);
    clientMs.push(performance.now() - started);
    const timing = document.getElementById("ping-timing")?.textContent ?? "";
    const match = timing.match(/([0-9.]+) ms/);
    serverMs.push(match ? parseFloat(match[1]) : NaN);
  }
  return [clientMs, serverMs];
}
"""
# Runs in the page: n same-origin fetches of /api/public, each message written into it.
FETCH = """
async (n) => {
  const out = document.createElement("p");
  document.body.appendChild(out);
  const ms = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const answer = await fetch("/api/public", {cache: "no-store"});
    out.textContent = (await answer.json()).message;
    ms.push(performance.now() - started);
  }
  out.remove();
  return ms;
}
"""


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": statistics.median(ordered), "p95": cuts[94], "p99": cuts[98]}


def measure(page: Page, clicks: int, warmup: int) -> dict[str, tuple[list[float], list[float]]]:
    """fetch(), ping-public and ping-private in turn, in one signed-in page."""
    results: dict[str, tuple[list[float], list[float]]] = {}
    page.evaluate(FETCH, warmup)
    results["fetch()"] = (page.evaluate(FETCH, clicks), [])
    for which in ("public", "private"):
        button = f"ping-{which}"
        page.evaluate(MEASURE, [button, warmup])
        results[button] = page.evaluate(MEASURE, [button, clicks])
    return results


def run(url: str, clicks: int, warmup: int) -> dict[str, tuple[list[float], list[float]]]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            sign_in(page, url)
            return measure(page, clicks, warmup)
        finally:
            browser.close()


def report(setup: str, results: dict[str, tuple[list[float], list[float]]]) -> None:
    floor = percentiles(results["fetch()"][0])
    print(f"\n{setup}")
    print(f"{'':<14} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   {'/fetch p50':>11} {'p99':>5}")
    for name, (client_ms, server_ms) in results.items():
        p = percentiles(client_ms)
        ratios = f"{p['p50'] / floor['p50']:11.2f} {p['p99'] / floor['p99']:5.2f}"
        print(f"{name:<14} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f}   {ratios}")
        if server := [v for v in server_ms if v == v]:
            s = percentiles(server)
            print(f"{'  server call':<14} {s['p50']:8.2f} {s['p95']:8.2f} {s['p99']:8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Click-to-screen time of the pings.")
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--spinner-delays",
        default="0,0.1",
        help="PING_SPINNER_DELAY of each make prod, in turn (seconds, comma-separated)",
    )
    parser.add_argument("--url", help="a running app (prod mode) instead of starting one")
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="also measure with telemetry on (OTLP/HTTP to a local receiver)",
    )
    baseline.add_argument(parser)
    args = parser.parse_args()

    measured: list[tuple[str, dict[str, tuple[list[float], list[float]]]]] = []
    if args.url:
        url = args.url.rstrip("/")
        measured.append((url, run(url, args.clicks, args.warmup)))
    setups = [
        (f"make prod, PING_SPINNER_DELAY={delay}", ROOT, {"PING_SPINNER_DELAY": delay})
        for delay in ([] if args.url else args.spinner_delays.split(","))
    ]
    if args.baseline and not args.url:
        tree, commit = checkout(args.baseline)
        setups.insert(0, (f"make prod, {commit} (before)", tree, {}))
    receiver = OtlpReceiver(decode=False) if args.telemetry and not args.url else None
    if receiver is not None:
        receiver.__enter__()
        delay = args.spinner_delays.split(",")[-1]
        on = {"PING_SPINNER_DELAY": delay, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        setups.append((f"make prod, PING_SPINNER_DELAY={delay}, telemetry on", ROOT, on))
    for setup, root, env in setups:
        app = start_app("prod", Path(tempfile.mkdtemp(prefix="ping-bench-")), env=env, root=root)
        try:
            wait_for_quiet()
            measured.append((setup, run(app.url, args.clicks, args.warmup)))
        finally:
            app.stop()

    if receiver is not None:
        receiver.__exit__()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"pingapp ping benchmark: {args.clicks} clicks each after {args.warmup} warm-up")
    print(f"load average at the end: {load} (2 cores: > 0.5 = noisy)")
    for setup, results in measured:
        report(setup, results)
    if receiver is not None and len(measured) >= 2:
        (_, off), (_, on) = measured[-2], measured[-1]
        print("\ntelemetry off -> on, p50 (the cost per ping):")
        for name in ("ping-public", "ping-private"):
            for label, index in (("click to screen", 0), ("server call", 1)):
                before = percentiles(off[name][index])["p50"]
                after = percentiles(on[name][index])["p50"]
                print(
                    f"  {name:<13} {label:<16} {before:7.2f} -> {after:7.2f} ms"
                    f"  ({after - before:+.2f} ms)"
                )
        kib = receiver.received_bytes / 1024
        print(f"the receiver got {len(receiver.paths)} exports, {kib:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
