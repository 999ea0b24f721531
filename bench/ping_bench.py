"""Click-to-screen time of the pings, in real Chromium, against the app in prod mode.

    .venv/bin/python bench/ping_bench.py [--clicks 300] [--warmup 30] [--url URL]

Without --url it starts `make prod` on a free port (and stops it afterwards),
signs in through the embedded provider, then for `ping-public` and
`ping-private` in turn clicks the button `--clicks` times after `--warmup`
unmeasured clicks. Each click is timed in the page: from `click()` to the
moment a MutationObserver on `ping-message` sees the answer. The server-side
time of each call (the handler's httpx call, shown in `ping-timing`) is
collected too. It prints p50 / p95 / p99 for both and the private/public ratio.

It drives Chromium with Playwright: run `make install-dev` first (the test tools,
Debian's Chromium); `make install` alone is not enough.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.app import start_app
from tests.support.browser import launch, sign_in_at_provider

# Runs in the page: click `button` n times; for each, the time until
# `ping-message` shows an answer, and the server time from `ping-timing`.
MEASURE = """
async ([buttonId, n]) => {
  const button = document.getElementById(buttonId);
  const message = () => document.getElementById("ping-message");
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
    const started = performance.now();
    button.click();
    await until(() => message().textContent === "");  // this click's call began
    await until(() => message().textContent !== "" && !button.disabled);
    clientMs.push(performance.now() - started);
    const timing = document.getElementById("ping-timing")?.textContent ?? "";
    const match = timing.match(/([0-9.]+) ms/);
    serverMs.push(match ? parseFloat(match[1]) : NaN);
  }
  return [clientMs, serverMs];
}
"""


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": statistics.median(ordered), "p95": cuts[94], "p99": cuts[98]}


def line(name: str, values: list[float]) -> str:
    p = percentiles(values)
    return f"{name:<24} p50 {p['p50']:6.2f} ms   p95 {p['p95']:6.2f} ms   p99 {p['p99']:6.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description="Click-to-screen time of the pings.")
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--url", help="a running app (prod mode) instead of starting one")
    args = parser.parse_args()

    app = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        app = start_app("prod", Path(tempfile.mkdtemp(prefix="ping-bench-")))
        url = app.url
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url + "/ping")
            page.click("#qsLoginBtn")
            sign_in_at_provider(page)
            page.wait_for_selector("#ping-private")
            results = {}
            for which in ("public", "private"):
                button = f"ping-{which}"
                page.evaluate(MEASURE, [button, args.warmup])
                results[which] = page.evaluate(MEASURE, [button, args.clicks])
            browser.close()
    finally:
        if app:
            app.stop()

    print(f"pingapp ping benchmark: {args.clicks} clicks each after {args.warmup} warm-up, {url}")
    for which, (client_ms, server_ms) in results.items():
        print(line(f"ping-{which} click→screen", client_ms))
        print(line(f"ping-{which} server call", [v for v in server_ms if v == v]))
    public, private = (statistics.median(results[w][0]) for w in ("public", "private"))
    print(f"private/public p50 ratio: {private / public:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
