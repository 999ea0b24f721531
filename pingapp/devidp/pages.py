"""The provider's few HTML pages: plain forms, a little CSS, light and dark.

Every value is escaped; element ids are the ones in docs/design.md's UI contract.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_CSS = """
:root { color-scheme: light dark; --bg: #f6f7fb; --fg: #1d2330; --card: #fff;
  --muted: #5b6476; --line: #d9deea; --accent: #4f46e5; --warn-bg: #fff4d6;
  --warn-fg: #6b4e00; --err: #b42318; --on-accent: #fff; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #12141a; --fg: #e7e9ef; --card: #1b1e27; --muted: #a0a7b8;
    --line: #2e3342; --accent: #8b85ff; --warn-bg: #3a2f0b; --warn-fg: #f5d77a;
    --err: #ff8a80; --on-accent: #12141a; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center;
  background: var(--bg); color: var(--fg);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { width: min(26rem, 92vw); background: var(--card); border: 1px solid var(--line);
  border-radius: 12px; padding: 1.75rem; }
h1 { font-size: 1.3rem; margin: 0 0 .75rem; }
.badge { display: block; background: var(--warn-bg); color: var(--warn-fg);
  border-radius: 8px; padding: .5rem .75rem; font-size: .85rem; margin-bottom: 1rem; }
label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; padding: .55rem .7rem;
  border: 1px solid var(--line); border-radius: 8px; background: transparent;
  color: inherit; font: inherit; }
.scope { display: flex; gap: .6rem; align-items: baseline; margin: .4rem 0;
  font-weight: 400; }
button { font: inherit; padding: .55rem 1.1rem; border-radius: 8px; cursor: pointer;
  border: 1px solid var(--line); background: transparent; color: inherit; }
button.primary { background: var(--accent); border-color: var(--accent);
  color: var(--on-accent); }
.actions { display: flex; gap: .6rem; margin-top: 1.25rem; }
.error { color: var(--err); font-weight: 600; }
fieldset { border: 0; margin: 0; padding: 0; }
legend { font-weight: 600; padding: 0; margin: .75rem 0 .25rem; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
input[type=text]:focus-visible, input[type=password]:focus-visible { outline-offset: 1px; }
.muted { color: var(--muted); font-size: .9rem; }
a { color: var(--accent); }
.back { margin: 1.25rem 0 0; padding-top: .75rem; border-top: 1px solid var(--line); }
code { font-size: .9em; }
"""

#: The pages load nothing and run no script; forms post to this provider only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_BADGE = (
    '<p class="badge" id="idp-dev-badge">pingapp development provider: for local '
    "development and tests only, not a real identity service.</p>"
)

SCOPE_TEXT = {
    "openid": "Sign you in (required)",
    "profile": "Your name, nickname and picture",
    "email": "Your email address",
    "offline_access": "Stay signed in (refresh tokens)",
    "read:messages": "Read messages from the API",
}


def scope_element_id(scope: str) -> str:
    """docs/design.md: `scope-<name>` with `:` written as `-`."""
    return "scope-" + scope.replace(":", "-")


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · pingapp dev provider</title><style>{_CSS}</style>"
        f"</head><body><main>{_BADGE}{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _hidden(fields: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )


def back_link(home: str | None, client_id: str) -> str:
    """The "Back to <client>" paragraph: a plain link to the client's home
    (`interaction.client_home`: the origin of a registered redirect URI), or nothing
    when there is none."""
    if not home:
        return ""
    return (
        f'<p class="back"><a id="back-to-app" href="{escape(home)}">'
        f"Back to {escape(client_id)}</a></p>"
    )


def sign_in_page(
    action: str,
    fields: dict[str, str],
    shown_passwords: dict[str, str],
    client_id: str,
    error: str = "",
    status: int | None = None,
    headers: dict[str, str] | None = None,
    *,
    username: str = "",
    home: str | None = None,
) -> HTMLResponse:
    """The sign-in form; lists `shown_passwords` (the built-in demo users only, or none).

    After a failed attempt, `username` is the name typed: it is filled in again and the
    focus starts in the password field. `home` is where "Back to" leads (`back_link`).
    """
    listed = '<p class="muted">Users are the ones set in <code>IDP_USERS</code>.</p>'
    if shown_passwords:
        items = "".join(
            f"<li><code>{escape(name)}</code> / <code>{escape(password)}</code></li>"
            for name, password in shown_passwords.items()
        )
        listed = f'<p class="muted">Demo users (user / password):</p><ul class="muted">{items}</ul>'
    message = (
        f'<p class="error" id="signin-error" role="alert">{escape(error)}</p>' if error else ""
    )
    # After a failed attempt the fields say so, and point at the message.
    invalid = ' aria-invalid="true" aria-describedby="signin-error"' if error else ""
    # The name typed stays; the focus goes where the user goes on (no script: autofocus).
    name_value = f' value="{escape(username)}"' if username else ""
    name_focus, password_focus = ("", " autofocus") if username else (" autofocus", "")
    body = f"""
<h1>Sign in</h1>
<p class="muted">to continue to <strong>{escape(client_id)}</strong></p>
{message}
<form method="post" action="{escape(action)}">
{_hidden(fields)}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" required
{name_value}{name_focus}{invalid}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password"
 required{password_focus}{invalid}>
<div class="actions"><button class="primary" id="signin" type="submit">Sign in</button></div>
</form>
{listed}
{back_link(home, client_id)}
"""
    response = page("Sign in", body, status=status or (401 if error else 200))
    response.headers.update(headers or {})
    return response


def consent_page(
    action: str,
    fields: dict[str, str],
    scopes: list[str],
    client_id: str,
    username: str,
    *,
    home: str | None = None,
) -> HTMLResponse:
    """Allow or Deny (Deny answers the client `access_denied`); `home` is where
    "Back to" leads, which tells the client nothing (`back_link`)."""
    rows = []
    for scope in scopes:
        required = scope == "openid"
        rows.append(
            f'<label class="scope" for="{scope_element_id(scope)}">'
            f'<input type="checkbox" id="{scope_element_id(scope)}" name="scope" '
            f'value="{escape(scope)}" checked{" disabled" if required else ""}>'
            f"<span><code>{escape(scope)}</code> "
            f'<span class="muted">{escape(SCOPE_TEXT.get(scope, ""))}</span></span></label>'
        )
    body = f"""
<h1>Allow access?</h1>
<p><strong>{escape(client_id)}</strong> asks to act for
<strong>{escape(username)}</strong>. Untick what it should not get.</p>
<form method="post" action="{escape(action)}">
{_hidden(fields)}
<fieldset><legend>What it may do</legend>
{"".join(rows)}
</fieldset>
<div class="actions">
<button class="primary" id="consent-allow" name="decision" value="allow"
 type="submit">Allow</button>
<button id="consent-deny" name="decision" value="deny" type="submit">Deny</button>
</div>
</form>
{back_link(home, client_id)}
"""
    return page("Allow access", body)


def error_page(title: str, detail: str, status: int = 400) -> HTMLResponse:
    body = (
        f'<h1 id="idp-error">{escape(title)}</h1><p>{escape(detail)}</p>'
        '<p class="muted">Go back to the app and start again. The provider did not '
        "send you back, because it could not tell that the address was safe.</p>"
    )
    return page(title, body, status=status)


def logout_confirm_page(action: str, fields: dict[str, str]) -> HTMLResponse:
    body = f"""
<h1>Sign out?</h1>
<p>Sign out of the development provider in this browser.</p>
<form method="post" action="{escape(action)}">{_hidden(fields)}
<div class="actions"><button class="primary" id="logout-confirm" type="submit">Sign out</button>
</div></form>
"""
    return page("Sign out", body)


def signed_out_page() -> HTMLResponse:
    return page(
        "Signed out",
        '<h1 id="idp-signed-out">Signed out</h1>'
        "<p>You are signed out of the development provider. You can close this tab.</p>",
    )


def avatar_svg(name: str) -> str:
    letter = escape((name[:1] or "?").upper())
    hue = sum(map(ord, name)) * 47 % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
        f'<rect width="96" height="96" rx="48" fill="hsl({hue} 55% 45%)"/>'
        '<text x="48" y="62" font-size="44" text-anchor="middle" fill="#fff" '
        f'font-family="system-ui, sans-serif">{letter}</text></svg>'
    )
