"""Accessibility in real Chromium (issue 17), on the app as `make prod` serves it.

- axe-core (WCAG 2.0-2.2 A/AA and best-practice rules, from axe-playwright-python,
  which ships axe's script: nothing is downloaded) on every page and state, in light
  and dark, at desktop and phone widths. The states are steps of one tour through
  the app, in two browser contexts (a visitor who signs in, then a few failed
  sign-ins); each test asks for its state, and the tour walks there once, so the
  four colour/width variants of a state are audited on the same page.
- The journey by keyboard alone: sign in (the provider's forms too), ping, open the
  profile, sign out; a visible focus ring at every stop, the answer in a live region,
  the focus where it should be after each step.

States that last only a moment (a ping or a sign-in on its way) are held on screen by
holding the server's next websocket frames until the audit is done.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx2
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    WebSocketRoute,
    expect,
)

from tests.support.app import RunningApp, start_app
from tests.support.browser import consent_without_following

AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": [
            "wcag2a",
            "wcag2aa",
            "wcag21a",
            "wcag21aa",
            "wcag22a",
            "wcag22aa",
            "best-practice",
        ],
    },
    "resultTypes": ["violations"],
}
Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
EVENTS = re.compile(r"/_reflex/_event")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "prod",
        tmp_path_factory.mktemp("a11y"),
        # The spinner at once (no delay), so the steps that hold it can check it.
        env={"IDP_USERS": "alice:alice,kim:kim", "PING_SPINNER_DELAY": "0"},
    )
    yield running
    running.stop()


# --- holding websocket frames ---------------------------------------------------


@dataclass
class Relay:
    """Passes the event websocket through, and can hold the server's frames that
    follow one containing `marker` (until `release`)."""

    marker: str | None = None
    holding: bool = False
    held: list[tuple[WebSocketRoute, str | bytes]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    servers: list[WebSocketRoute] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.route_web_socket(EVENTS, self._route)

    def _route(self, page_side: WebSocketRoute) -> None:
        server = page_side.connect_to_server()
        self.servers.append(server)

        def down(message: str | bytes) -> None:
            if self.holding and str(message).startswith("42"):
                self.held.append((page_side, message))
                return
            page_side.send(message)
            if self.marker is not None and self.marker in str(message):
                self.marker, self.holding = None, True

        def up(message: str | bytes) -> None:
            self.sent.append(str(message))
            server.send(message)

        server.on_message(down)
        page_side.on_message(up)

    def hold_after(self, marker: str) -> None:
        self.marker = marker

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for page_side, message in held:
            page_side.send(message)


# --- the tour -------------------------------------------------------------------


@dataclass
class Tour:
    """Every audited state, in the order one visitor reaches them."""

    app: RunningApp
    browser: Browser
    page: Page = field(init=False)
    relay: Relay = field(default_factory=Relay)
    done: list[str] = field(default_factory=list)
    steps: dict[str, Callable[[], None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        context = self.browser.new_context()
        context.set_default_timeout(20_000)
        self.relay.attach(context)
        self.page = context.new_page()
        self.steps = {name: getattr(self, "step_" + name.replace("-", "_")) for name in STATES}

    def reach(self, state: str) -> Page:
        """Walk the tour up to `state` (each step once, in order)."""
        for name in STATES[: STATES.index(state) + 1]:
            if name not in self.done:
                self.steps[name]()
                self.done.append(name)
        return self.page

    def close(self) -> None:
        self.relay.release()
        self.page.context.close()

    # Signed out.

    def step_home_signed_out(self) -> None:
        self.page.goto(self.app.url + "/")
        expect(self.page.locator("#home-status")).to_contain_text("You are not logged in!")

    def step_ping_signed_out(self) -> None:
        self.page.goto(self.app.url + "/ping")
        expect(self.page.locator("#ping-public")).to_be_visible()
        expect(self.page.locator("#qsLoginBtn")).to_be_visible()

    def step_ping_public_running(self) -> None:
        self.relay.hold_after('"running_rx_state_":"public"')
        self.page.click("#ping-public")
        expect(self.page.locator("#ping-loading")).to_be_visible()

    def step_ping_public_answered(self) -> None:
        self.relay.release()
        expect(self.page.locator("#ping-timing")).to_contain_text("HTTP 200")

    def step_ping_signed_out_refused(self) -> None:
        # A private ping from a signed-out tab (as after a sign-out in another tab):
        # the public ping's frame, renamed.
        frame = next(f for f in reversed(self.relay.sent) if "ping_public" in f)
        self.relay.servers[-1].send(frame.replace("ping_public", "ping_private"))
        expect(self.page.locator("#ping-message")).to_contain_text("Sign in first")

    def step_profile_redirecting(self) -> None:
        # The profile page sends a signed-out visitor to sign in.
        self.relay.hold_after('"busy_rx_state_":true')
        self.page.goto(self.app.url + "/profile")
        expect(self.page.get_by_text("Taking you to sign in…")).to_be_visible()

    def step_provider_sign_in(self) -> None:
        self.relay.release()
        expect(self.page.locator("#username")).to_be_visible()

    def step_provider_sign_in_error(self) -> None:
        self.page.fill("#username", "alice")
        self.page.fill("#password", "wrong")
        self.page.click("#signin")
        expect(self.page.locator("#signin-error")).to_be_visible()

    def step_provider_consent(self) -> None:
        self.page.fill("#username", "alice")
        self.page.fill("#password", "alice")
        self.page.click("#signin")
        expect(self.page.locator("#consent-allow")).to_be_visible()

    def step_callback_pending(self) -> None:
        # Declined, so that the scoped ping answers 403 later.
        self.page.uncheck("#scope-read-messages")
        self.relay.hold_after('"clean_url_rx_state_":"/callback"')
        self.page.click("#consent-allow")
        expect(self.page.locator("#callback-pending")).to_be_visible()

    # Signed in.

    def step_profile_signed_in(self) -> None:
        self.relay.release()
        expect(self.page.locator("#profile-name")).to_have_text("Alice")
        expect(self.page.locator("#profile-picture")).to_be_visible()

    def step_ping_signed_in(self) -> None:
        self.page.goto(self.app.url + "/ping")
        expect(self.page.locator("#token-claims")).to_contain_text('"sub"')

    def step_ping_private_running(self) -> None:
        self.relay.hold_after('"running_rx_state_":"private"')
        self.page.click("#ping-private")
        expect(self.page.locator("#ping-loading")).to_be_visible()

    def step_ping_private_answered(self) -> None:
        self.relay.release()
        expect(self.page.locator("#ping-message")).to_contain_text("private endpoint")

    def step_ping_scoped_forbidden(self) -> None:
        self.page.click("#ping-scoped")
        expect(self.page.locator("#ping-message")).to_contain_text("Forbidden (403)")
        expect(self.page.locator("#review-permissions")).to_be_visible()

    def step_home_signed_in(self) -> None:
        self.page.goto(self.app.url + "/")
        expect(self.page.locator("#home-status")).to_contain_text("You are logged in!")

    # Sign-ins that fail (the visitor stays signed in).

    def step_callback_forged_state(self) -> None:
        self.page.goto(self.app.url + "/callback?code=x&state=forged")
        expect(self.page.locator("#auth-error-title")).to_have_text(
            "This sign-in cannot be finished here"
        )

    def _to_consent(self) -> None:
        """Press Log In, up to the provider's consent page."""
        self.page.click("#auth-error a:has-text('Log In')")
        expect(self.page.locator("#consent-allow")).to_be_visible()

    def _real_answer(self) -> str:
        """Press Log In and walk the provider's redirects without following the last
        one: the callback URL (code, state, iss) this browser would have loaded."""
        hops: list[str] = []

        def keep(route: Route) -> None:
            hops.append(route.request.url)
            route.abort()

        login_step = re.compile(r"/auth/login\?")  # (a glob's * stops at the path's /)
        self.page.route(login_step, keep)
        try:
            self.page.click("#auth-error a:has-text('Log In')")
            deadline = time.monotonic() + 20
            while not hops and time.monotonic() < deadline:
                self.page.wait_for_timeout(50)
        finally:
            self.page.unroute(login_step, keep)
        url = hops[0]
        for _ in range(10):  # /auth/login, then the provider's own redirects
            answer = self.page.request.get(url, max_redirects=0)
            location = answer.headers.get("location")
            if location is None:  # a page: the provider wants consent first
                self.page.goto(url)
                expect(self.page.locator("#consent-allow")).to_be_visible()
                return consent_without_following(self.page)
            url = urljoin(url, location)
            if "/callback?" in url:
                return url
        pytest.fail("the provider never sent the browser back")

    def _callback_error(self, **changes: str | None) -> str:
        """The provider's real answer to a login of this browser, with `changes` made
        to its query (None removes a parameter): the error title shown."""
        answer = urlsplit(self._real_answer())
        query = {name: values[0] for name, values in parse_qs(answer.query).items()}
        for name, value in changes.items():
            if value is None:
                query.pop(name, None)
            else:
                query[name] = value
        self.page.goto(urlunsplit(answer._replace(query=urlencode(query))))
        title = self.page.locator("#auth-error-title")
        expect(title).not_to_have_text("")
        return title.inner_text()

    def step_callback_cancelled(self) -> None:
        self._to_consent()
        self.page.click("#consent-deny")
        expect(self.page.locator("#auth-error-title")).to_have_text("Sign-in was cancelled")

    def step_callback_no_code(self) -> None:
        assert self._callback_error(code=None) == "The provider sent no code"

    def step_callback_other_issuer(self) -> None:
        title = self._callback_error(iss="https://issuer.invalid/")
        assert title == "The answer came from another provider"

    def step_callback_code_refused(self) -> None:
        self._callback_error(code="forged")  # the provider refuses to trade it

    # The provider's other pages, and the sign-in hop's.

    def step_provider_logout_confirm(self) -> None:
        self.page.goto(self.app.url + "/idp/logout")
        expect(self.page.locator("#logout-confirm")).to_be_visible()

    def step_provider_signed_out(self) -> None:
        self.page.click("#logout-confirm")
        expect(self.page.locator("#idp-signed-out")).to_be_visible()

    def step_provider_error(self) -> None:
        self.page.goto(self.app.url + "/idp/authorize?client_id=nobody&response_type=code")
        expect(self.page.locator("#idp-error")).to_be_visible()

    def step_sign_in_link_expired(self) -> None:
        self.page.goto(self.app.url + "/auth/session?ticket=spent")
        expect(self.page.locator("h1")).to_have_text("Sign-in link expired")


STATES = [
    "home-signed-out",
    "ping-signed-out",
    "ping-public-running",
    "ping-public-answered",
    "ping-signed-out-refused",
    "profile-redirecting",
    "provider-sign-in",
    "provider-sign-in-error",
    "provider-consent",
    "callback-pending",
    "profile-signed-in",
    "ping-signed-in",
    "ping-private-running",
    "ping-private-answered",
    "ping-scoped-forbidden",
    "home-signed-in",
    "callback-forged-state",
    "callback-cancelled",
    "callback-no-code",
    "callback-other-issuer",
    "callback-code-refused",
    "provider-logout-confirm",
    "provider-signed-out",
    "provider-error",
    "sign-in-link-expired",
]


@pytest.fixture(scope="module")
def tour(app: RunningApp, browser: Browser) -> Iterator[Tour]:
    walk = Tour(app, browser)
    yield walk
    walk.close()


def audit(page: Page, scheme: Scheme, viewport: str) -> list[dict[str, Any]]:
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size(VIEWPORTS[viewport])
    # The app's theme follows the scheme through a class on <html>; the provider's
    # pages through a media query.
    page.wait_for_function(
        """scheme => !document.querySelector(".radix-themes")
             || document.documentElement.classList.contains(scheme)""",
        arg=scheme,
    )
    page.wait_for_timeout(150)  # a repaint after the theme switch
    return Axe().run(page, options=AXE_OPTIONS).response["violations"]


@pytest.mark.parametrize(
    ("state", "scheme", "viewport"), list(itertools.product(STATES, SCHEMES, VIEWPORTS))
)
def test_axe_finds_no_violation(tour: Tour, state: str, scheme: Scheme, viewport: str) -> None:
    page = tour.reach(state)
    violations = audit(page, scheme, viewport)
    report = [
        f"{v['id']} ({v['impact']}): {', '.join(' '.join(n['target']) for n in v['nodes'])}"
        for v in violations
    ]
    for line in report:
        print(f"{state} {scheme} {viewport}: {line}")
    assert not report, f"{state} ({scheme}, {viewport}) at {page.url}:\n" + "\n".join(report)


# --- the keyboard journey ---------------------------------------------------------

FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const box = e.getBoundingClientRect();
  return {
    id: e.id, tag: e.tagName.toLowerCase(), name: e.getAttribute("aria-label")
      || (e.innerText || e.value || "").trim().slice(0, 40),
    ring: (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2)
      || s.boxShadow !== "none",
    shown: box.width > 1 && box.height > 1,
    heading: e.matches("main h1"),
  };
}"""


def focused(page: Page) -> dict[str, Any]:
    info = page.evaluate(FOCUSED)
    assert info is not None, "the focus is on the page itself, not on a control"
    return info


def tab_to(page: Page, element_id: str, *, back: bool = False, limit: int = 25) -> list[str]:
    """Press Tab (Shift+Tab) until `element_id` has the focus; every stop on the
    way must show a focus ring. Returns the stops."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = focused(page)
        stops.append(now["id"] or now["name"])
        assert now["ring"] and now["shown"], f"no visible focus ring on {now}"
        if now["id"] == element_id:
            return stops
    pytest.fail(f"#{element_id} not reached by keyboard; stops: {stops}")


def wait_for_focus_on_heading(page: Page) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        info = page.evaluate(FOCUSED)
        if info and info["heading"]:
            return
        page.wait_for_timeout(100)
    pytest.fail(f"the page's heading did not get the focus; it is on {page.evaluate(FOCUSED)}")


def test_keyboard_only_sign_in_ping_profile_and_sign_out(app: RunningApp, browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(app.url + "/ping")
    expect(page.locator("#ping-public")).to_be_visible()

    # The header in reading order, after a skip link (shown once focused).
    stops = tab_to(page, "color-mode")
    assert stops == [
        "skip-link",
        "pingapp",
        "nav-home",
        "nav-profile",
        "nav-ping",
        "qsLoginBtn",
        "color-mode",
    ], stops
    # The colour toggle is named and works from the keyboard.
    assert focused(page)["name"] == "Switch to dark mode"
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    assert focused(page)["name"] == "Switch to light mode"
    # The skip link leads past the header to the page's first control.
    tab_to(page, "skip-link", back=True)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "ping-public"
    tab_to(page, "qsLoginBtn", back=True)
    page.keyboard.press("Enter")

    # The provider's forms: the username field has the focus.
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type("kim")
    tab_to(page, "signin")
    page.keyboard.press("Enter")
    expect(page.locator("#consent-allow")).to_be_visible()
    tab_to(page, "scope-read-messages")
    page.keyboard.press("Space")
    expect(page.locator("#scope-read-messages")).not_to_be_checked()
    page.keyboard.press("Space")
    expect(page.locator("#scope-read-messages")).to_be_checked()
    tab_to(page, "consent-allow")
    page.keyboard.press("Enter")

    # Back on the ping page, signed in, with the focus on its heading.
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(re.compile(re.escape(app.url) + r"/ping/?$"))
    wait_for_focus_on_heading(page)

    # Pings: Enter and Space; the answer is announced and the focus stays put.
    live = page.locator("#ping-message")
    assert live.evaluate("e => e.closest('[aria-live]')?.getAttribute('aria-live')") == "polite"
    tab_to(page, "ping-private")
    page.keyboard.press("Enter")
    expect(live).to_contain_text("Hello from a private endpoint!")
    assert focused(page)["id"] == "ping-private"
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "ping-scoped"
    page.keyboard.press("Space")
    expect(live).to_contain_text("have a scope of read:messages")
    assert focused(page)["id"] == "ping-scoped"
    tab_to(page, "ping-public", back=True)
    page.keyboard.press("Enter")
    expect(live).to_contain_text("public endpoint")
    assert focused(page)["id"] == "ping-public"

    # The profile, from the navbar: the focus moves to the new page's heading.
    tab_to(page, "nav-profile", back=True)
    page.keyboard.press("Enter")
    expect(page.locator("#profile-name")).to_have_text("Kim")
    wait_for_focus_on_heading(page)
    assert page.locator("main h1").inner_text() == "Profile"

    # Sign out: back on the home page, signed out, the focus on its heading.
    tab_to(page, "qsLogoutBtn", back=True)
    page.keyboard.press("Enter")
    # The embedded provider asks "Sign out?" (the app sends no ID token in a URL).
    expect(page.locator("#logout-confirm")).to_be_visible()
    tab_to(page, "logout-confirm")
    page.keyboard.press("Enter")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    wait_for_focus_on_heading(page)
    context.close()


def test_spinners_stand_still_for_reduced_motion(app: RunningApp, browser: Browser) -> None:
    context = browser.new_context(reduced_motion="reduce")
    page = context.new_page()
    page.set_default_timeout(20_000)
    relay = Relay()
    relay.attach(context)
    page.goto(app.url + "/ping")
    relay.hold_after('"running_rx_state_":"public"')
    page.click("#ping-public")
    expect(page.locator("#ping-loading")).to_be_visible()
    running = page.evaluate(
        """() => document.getAnimations()
             .filter(a => a.playState === "running"
               && a.effect.getComputedTiming().duration > 1).length"""
    )
    relay.release()
    expect(page.locator("#ping-timing")).to_be_visible()
    context.close()
    assert running == 0, f"{running} animations still run with prefers-reduced-motion: reduce"


def test_the_favicon_is_an_icon(app: RunningApp) -> None:
    answer = httpx2.get(app.url + "/favicon.ico")
    assert answer.status_code == 200
    assert answer.content.startswith(b"\x00\x00\x01\x00")  # an ICO, not the app's HTML
