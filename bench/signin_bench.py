"""Sign-in round trip, in real Chromium, against the app in prod mode.

    .venv/bin/python bench/signin_bench.py [--rounds 20] [--url URL | --baseline REF]

Without --url it starts `make prod` on a free port (with --baseline, first that of
an earlier commit, checked out by `bench/baseline.py`, then this one's), waits for
the machine to be quiet, and stops it afterwards. The
first sign-in (unmeasured) gives the embedded provider alice's consent. Then each
round, in a new browser context (no cookies: what a new visitor has):

1. opens `/ping` and waits until the page is ready (its websocket is up);
2. clicks Log In (the clock starts);
3. fills the provider's sign-in form and submits it, as the tests do (consent is
   remembered, so no consent page);
4. waits until `/ping` shows the user signed in (the clock stops).

Times are taken in the page, by the browser's clock: click on Log In → the
provider's form loaded, and click on its Sign in → Log Out visible on `/ping`. Their
sum is "the app's part" (the time the form waits for the test to fill it is left
out; Playwright's own round trips never count). It prints p50 / p90 / max of each,
and what the browser did on the way: documents loaded (each a full page load), of
which app pages (each boots the app and opens a websocket), websockets opened, and
HTTP redirects.

It drives Chromium with Playwright: run `make install-dev` first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Request, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import baseline
from bench.baseline import ROOT, checkout, wait_for_quiet
from tests.support.app import start_app
from tests.support.browser import launch, sign_in, sign_in_at_provider

# Runs in every page of a round, before the page's own scripts: marks what happened
# when, by the browser's clock (Date.now(), one clock for all pages of the tab), in
# sessionStorage, which the tab keeps across its same-origin page loads.
MARKS = """
(() => {
  const mark = (what) => {
    const marks = JSON.parse(sessionStorage.getItem("bench") || "[]");
    marks.push([what, Date.now()]);
    sessionStorage.setItem("bench", JSON.stringify(marks));
  };
  const where = location.pathname.replace(/\\/$/, "") || "/";
  const clicked = (event) => mark("click " + (event.target.closest("button")?.id || ""));
  addEventListener("click", clicked, true);
  document.addEventListener("DOMContentLoaded", () => {
    mark("page " + where);
    const signedIn = () => document.getElementById("qsLogoutBtn")?.checkVisibility();
    const observer = new MutationObserver(() => {
      if (signedIn()) { observer.disconnect(); mark("signed in " + where); }
    });
    observer.observe(document.body, {subtree: true, childList: true, attributes: true});
  });
})();
"""


def ready(page: Page) -> None:
    """Until the page's websocket has delivered its first state (Log In is enabled)."""
    page.wait_for_selector("#qsLoginBtn:not([disabled])")


def one_round(context: BrowserContext, url: str) -> dict[str, object]:
    context.add_init_script(MARKS)
    page = context.new_page()
    page.goto(url + "/ping")
    ready(page)
    page.evaluate("sessionStorage.removeItem('bench')")
    documents: list[Request] = []
    websockets: list[str] = []
    page.on(
        "request",
        lambda request: documents.append(request) if request.resource_type == "document" else None,
    )
    page.on("websocket", lambda socket: websockets.append(socket.url))
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)  # consent is remembered: the sign-in form only
    page.wait_for_function("/signed in \\/ping/.test(sessionStorage.getItem('bench'))")
    timeline = page.evaluate("JSON.parse(sessionStorage.getItem('bench'))")
    marks = dict(reversed(timeline))  # the first time of each
    clicked, shown = marks["click qsLoginBtn"], marks["page /idp/login"]
    submitted, done = marks["click signin"], marks["signed in /ping"]
    return {
        "click to form": shown - clicked,
        "submit to signed in": done - submitted,
        "app's part": (shown - clicked) + (done - submitted),
        "with the form filled": done - clicked,
        "documents": tuple(urlsplit(request.url).path for request in documents),
        "pages shown": tuple(what.split()[1] for what, _ in timeline if what.startswith("page ")),
        "redirects": sum(1 for request in documents if request.redirected_from),
        "websockets": len(websockets),
    }


def run(url: str, rounds: int) -> list[dict[str, object]]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            first = browser.new_context()
            page = first.new_page()
            page.set_default_timeout(30_000)
            sign_in(page, url)  # consent given once, remembered by the provider
            first.close()
            results = []
            for _ in range(rounds):
                context = browser.new_context()
                context.set_default_timeout(30_000)
                try:
                    results.append(one_round(context, url))
                finally:
                    context.close()
            return results
        finally:
            browser.close()


def report(setup: str, results: list[dict[str, object]], app_pages: set[str]) -> None:
    print(f"\n{setup}: {len(results)} sign-ins")
    print(f"{'':<22} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for key in ("app's part", "click to form", "submit to signed in", "with the form filled"):
        values = sorted(float(r[key]) for r in results)  # type: ignore[arg-type]
        p90 = statistics.quantiles(values, n=10, method="inclusive")[8]
        print(f"{key:<22} {statistics.median(values):8.1f} {p90:8.1f} {values[-1]:8.1f}")
    paths = Counter(r["documents"] for r in results)
    documents, _ = paths.most_common(1)[0]
    shown = results[-1]["pages shown"]
    booted = [p for p in shown if p in app_pages]  # type: ignore[union-attr]
    print(f"documents requested: {len(documents)}: {' -> '.join(documents)}")  # type: ignore[arg-type]
    print(f"  pages shown: {' -> '.join(shown)}")  # type: ignore[arg-type]
    print(f"  app pages (each boots the app and opens a websocket): {len(booted)}")
    print(f"  redirects: {max(int(r['redirects']) for r in results)}")  # type: ignore[call-overload]
    print(f"websockets opened: {max(int(r['websockets']) for r in results)}")  # type: ignore[call-overload]


def main() -> int:
    parser = argparse.ArgumentParser(description="Sign-in round trip in Chromium.")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--url", help="a running app (prod mode) instead of starting one")
    baseline.add_argument(parser)
    args = parser.parse_args()
    app_pages = {"/", "/ping", "/profile", "/callback"}
    measured: list[tuple[str, list[dict[str, object]]]] = []
    if args.url:
        measured.append((args.url, run(args.url.rstrip("/"), args.rounds)))
    setups = [] if args.url else [("make prod, this checkout", ROOT)]
    if args.baseline and not args.url:
        tree, commit = checkout(args.baseline)
        setups.insert(0, (f"make prod, {commit} (before)", tree))
    for setup, root in setups:
        app = start_app("prod", Path(tempfile.mkdtemp(prefix="signin-bench-")), root=root)
        try:
            wait_for_quiet()
            measured.append((setup, run(app.url, args.rounds)))
        finally:
            app.stop()
    load = "/".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"pingapp sign-in benchmark; load average at the end: {load}")
    for setup, results in measured:
        report(setup, results, app_pages)
    if len(measured) == 2:
        (_, before), (_, after) = measured
        p50 = [statistics.median(float(r["app's part"]) for r in rs) for rs in (before, after)]  # type: ignore[arg-type]
        print(f"\napp's part, p50: {p50[0]:.0f} -> {p50[1]:.0f} ms ({p50[1] / p50[0]:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
