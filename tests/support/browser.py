"""Chromium for the browser tests, and what a person does in pingapp's pages."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import urlencode, urljoin

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.support.app import PRIVATE_MESSAGE, PUBLIC_MESSAGE

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What works on this machine (docs/development.md): no sandbox as root, and nothing
# that reaches for the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds a page action or a locator waits by default.
DEFAULT_TIMEOUT = 20_000
#: Seconds a browser test's body, or a context's close, may take before the
#: watchdog decides Chromium stopped answering: minutes more than any test needs.
HANG_SECONDS = 300
#: An argument Chromium ignores, naming the pytest process that launched it, so
#: the watchdog finds this run's browsers (and nobody else's) in /proc.
LAUNCHED_BY = f"--pingapp-tests={os.getpid()}"


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, LAUNCHED_BY])


class BrowserHung(Exception):
    """Chromium stopped answering a Playwright call; the watchdog killed it.

    Some Playwright calls have no timeout of their own (`new_page`, `close`,
    `evaluate` of a promise that never settles): if Chromium stops answering one,
    the test would wait for ever. The watchdog turns that into this error, and the
    browser tests are rerun once for it, and for nothing else (tests/conftest.py).
    """


def kill_launched_browsers() -> int:
    """SIGKILL the Chromium browser processes this pytest process launched (their
    renderers and helpers exit with them); how many there were."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile, or not ours to read
        if LAUNCHED_BY.encode() in args and not any(a.startswith(b"--type=") for a in args):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    return killed


@contextlib.contextmanager
def watchdog(what: str, seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Run the block; if it takes more than `seconds`, kill this run's Chromium, so
    a call waiting on it fails, and raise BrowserHung from that failure."""
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        kill_launched_browsers()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except BaseException as error:
        if fired.is_set():
            msg = f"{what}: Chromium did not answer for {seconds:g} s; the watchdog killed it"
            raise BrowserHung(msg) from error
        raise
    finally:
        timer.cancel()


class LiveBrowser:
    """The tests' shared Chromium, launched again if the watchdog killed it: tests
    use it as a `Browser`."""

    def __init__(self, playwright: Playwright) -> None:
        self.playwright = playwright
        self.current = launch(playwright)

    def __getattr__(self, name: str) -> object:
        if not self.current.is_connected():
            self.current = launch(self.playwright)
        return getattr(self.current, name)

    def as_browser(self) -> Browser:
        return cast(Browser, self)


def new_context(browser: Browser) -> BrowserContext:
    """A fresh browser profile (no cookies, no storage) with the tests' timeout."""
    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT)
    return context


def sign_in_at_provider(
    page: Page, user: str = "alice", *, allow: bool = True, untick: tuple[str, ...] = ()
) -> None:
    """Fill the embedded provider's forms as a person would: sign in (unless the
    provider's session already knows the browser), then consent."""
    page.wait_for_selector("#username, #consent-allow")
    if page.locator("#username").count():
        page.fill("#username", user)
        page.fill("#password", user)
        page.click("#signin")
        page.wait_for_load_state()
    if page.locator("#consent-allow").count():
        for scope in untick:
            page.uncheck("#scope-" + scope.replace(":", "-"))
        page.click("#consent-allow" if allow else "#consent-deny")


def consent_without_following(page: Page) -> str:
    """Press Allow on the embedded provider's consent page without following the
    redirect back: the callback URL (code, state, iss) the browser would have loaded."""
    action, fields = page.evaluate(
        """() => {
            const form = document.querySelector('form');
            const data = new FormData(form, document.getElementById('consent-allow'));
            return [form.action, [...data.entries()]];
        }"""
    )
    answer = page.request.post(
        urljoin(page.url, action),
        data=urlencode([tuple(pair) for pair in fields]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    return answer.headers["location"]


def sign_in(page: Page, url: str, user: str = "alice") -> None:
    """From the ping page, through the embedded provider, back signed in."""
    page.goto(url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    # Callback, token request, session hop: a cold backend on a busy machine takes a while.
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    # Back where the login started; prod's own server redirects /ping to /ping/.
    expect(page).to_have_url(re.compile(re.escape(url) + "/ping/?$"))


def ping_private(page: Page) -> None:
    """After a reload, a public then a private ping, so each answer is a new one
    (the page state, last message included, outlives a reload)."""
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    message = page.locator("#ping-message")
    page.click("#ping-public")
    expect(message).to_contain_text(PUBLIC_MESSAGE)
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)


def log_out(page: Page) -> None:
    """Press Log Out, and confirm at the embedded provider, which asks: its
    end-session skips the question only for an `id_token_hint`, which the app never
    puts in a URL (docs/security.md 19, 35). (The app shows Log In before it leaves for
    the provider, so that button says nothing about where the browser is.)"""
    page.click("#qsLogoutBtn")
    page.click("#logout-confirm")


def sign_out(page: Page, url: str) -> None:
    """Log out from a page other than home: through the provider's end-session,
    back on the home page, signed out (also after a reload)."""
    assert page.url != url + "/"
    log_out(page)
    page.wait_for_url(url + "/")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    page.reload()
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")


def csp_watch(page: Page) -> list[str]:
    """Every Content-Security-Policy complaint Chromium logs for `page`."""
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return complaints
