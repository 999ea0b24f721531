"""Content-Security-Policy checks shared by the make run, make prod and nginx
tests (docs/security.md 52): a policy read by directive, and pages used in Chromium
while every CSP complaint and page error is collected."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.app import PUBLIC_MESSAGE
from tests.support.browser import csp_watch


def directives(policy: str) -> dict[str, list[str]]:
    """`{directive: [source, ...]}` of one policy."""
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        if part.strip():
            name, *sources = part.split()
            parsed[name.lower()] = sources
    return parsed


def assert_strict(policy: str) -> dict[str, list[str]]:
    """No eval, no inline scripts but by hash, no framing; the parsed policy."""
    parsed = directives(policy)
    assert "'unsafe-eval'" not in policy, policy
    scripts = parsed.get("script-src", parsed.get("default-src"))
    assert scripts, policy
    assert "'unsafe-inline'" not in scripts, policy
    assert parsed["frame-ancestors"] == ["'none'"], policy
    assert parsed["object-src"] == ["'none'"], policy
    return parsed


def watch(page: Page) -> list[str]:
    """CSP complaints (tests.support.browser.csp_watch) and uncaught page errors
    (a failed hydration shows as one: React's error #418) of `page`."""
    problems = csp_watch(page)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


def use_home_and_ping(page: Page, url: str) -> None:
    """The home page, then the ping page through the navbar (the app runs: its
    scripts loaded and React hydrated), then a public ping (the backend's events)."""
    page.goto(url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    page.click("#nav-ping")
    expect(page).to_have_url(re.compile(re.escape(url) + "/ping/?$"))
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)


def use_api_docs(page: Page, docs_url: str) -> None:
    """Swagger UI at `docs_url`: it renders, calls /public ("Try it out") and opens
    the Authorize dialog."""
    page.goto(docs_url)
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("pingapp API")
    page.click("#operations-messages-public_public_get")
    page.click(".try-out__btn")
    page.click(".execute")
    status = page.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    page.click("button.authorize")
    expect(page.locator(".auth-container").first).to_contain_text("authorizationCode")
