"""The pages' security headers, one source for every way the pages are served.

- `make prod` (Reflex's backend serves the built pages): `with_security_headers`
  wraps Reflex's ASGI app and adds `PAGE_HEADERS` to its HTML answers.
- The nginx sample (deploy/nginx.conf) sends the same values (a test compares them).
- `make run` (Vite's dev server on the frontend port): rxconfig.py's
  `SecurityHeaders` plugin puts a middleware into `.web/vite.config.js`
  (`add_to_vite_config`) that sends `dev_policy()` with the hashes of each
  page's inline scripts.
- `/api/docs` (Swagger UI) sends `docs_policy()` (pingapp/api/app.py).

No policy allows `'unsafe-eval'` or `'unsafe-inline'` for scripts. The built pages
hold inline scripts (Reflex's colour-mode script, React Router's route data and
module loader, React's streaming runtime); the module loader names the build's
hashed files, so its hash changes with every build. After each build, rxconfig.py's
`SecurityHeaders` plugin therefore copies each inline script of the pages to a file in
`assets/` (named by its hash) and gives the `<script>` that `src`; the browser
runs the file and ignores the text, which stays for React's hydration to compare.
Then `script-src 'self'` covers every script, one fixed policy for every build.

Styles keep `'unsafe-inline'`: the styling library (Emotion) inserts `<style>`
elements at run time, and the pages carry its server-rendered `<style>` elements.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pingapp.urls import origin_of


def policy(directives: Mapping[str, Iterable[str]]) -> str:
    """A Content-Security-Policy value: `directive source source; ...`."""
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


#: The pages' policy, directive by directive (why each source is there):
PAGE_DIRECTIVES: dict[str, tuple[str, ...]] = {
    # Anything not named below: this origin only.
    "default-src": ("'self'",),
    # The built files (Reflex's bundle and the pages' own scripts, moved to files
    # by `externalize_site` after the build). No 'unsafe-eval': Reflex's frontend
    # evals only what a backend event sends as code (rx.call_script, or
    # rx.call_function given a string); the app sends none.
    "script-src": ("'self'",),
    # Emotion (Reflex's styling) writes <style> elements at run time.
    "style-src": ("'self'", "'unsafe-inline'"),
    # Radix Themes' icons and the favicon come as data: URLs or from this origin.
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'", "data:"),
    # The event websocket and every fetch go to this origin ('self' covers ws:/wss:).
    "connect-src": ("'self'",),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    # No other site may frame the pages (clickjacking).
    "frame-ancestors": ("'none'",),
}
#: The pages' Content-Security-Policy (make prod, nginx).
PAGE_POLICY = policy(PAGE_DIRECTIVES)

_CSP = "Content-Security-Policy"
#: Every header the pages carry (make prod, nginx; make run with `dev_policy`).
PAGE_HEADERS: dict[str, str] = {
    _CSP: PAGE_POLICY,
    # The sign-in return's URL holds the code: no page sends its URL elsewhere.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # frame-ancestors for browsers that only know the older header.
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def websocket_origin(url: str) -> str:
    """The ws:/wss: origin of an http(s) URL."""
    origin = origin_of(url)
    return "ws" + origin[len("http") :] if origin.startswith("http") else origin


def dev_policy(backend: str) -> str:
    """`make run`'s page policy: the pages' one, plus the backend on its own port:
    its events websocket and fetches, and the embedded provider's avatars (in one
    origin set-ups they are 'self'). Vite's dev server then adds the hashes of
    each page's inline scripts to `script-src` (`add_to_vite_config`). Vite's own
    websocket (hot reload) is on the page's origin: 'self'."""
    directives = dict(PAGE_DIRECTIVES)
    directives["connect-src"] = ("'self'", origin_of(backend), websocket_origin(backend))
    directives["img-src"] = (*PAGE_DIRECTIVES["img-src"], origin_of(backend))
    return policy(directives)


def script_hash(text: str) -> str:
    """The CSP source for an inline script (its text as the browser reads it)."""
    digest = hashlib.sha256(text.replace("\r\n", "\n").replace("\r", "\n").encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def docs_policy(inline_scripts: Iterable[str], connect: Iterable[str] = ()) -> str:
    """The policy for a Swagger UI page: its files from this origin, its inline
    scripts by their hash, fetches to this origin and to `connect` (the
    provider's token endpoint, for "Authorize")."""
    directives = dict(PAGE_DIRECTIVES)
    directives["script-src"] = ("'self'", *sorted({script_hash(s) for s in inline_scripts}))
    directives["connect-src"] = ("'self'", *sorted(set(connect) - {"'self'"}))
    return policy(directives)


# One HTML <script> element: its attributes and its text (the HTML parser ends a
# script's text at the first `</script`).
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SRC = re.compile(r"\ssrc\s*=", re.IGNORECASE)
_TYPE = re.compile(r"""\stype\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
_ASYNC = re.compile(r"""\sasync(\s*=\s*(""|''|async|"async"))?(?=[\s/]|$)""", re.IGNORECASE)
_JS_TYPES = {"", "module", "text/javascript", "application/javascript"}


def inline_scripts(html: str) -> list[str]:
    """The text of every inline script in `html` that the browser would run."""
    found = []
    for match in _SCRIPT.finditer(html):
        attributes, text = match.groups()
        kind = _TYPE.search(attributes)
        if _SRC.search(attributes) or (kind and kind.group(1).lower() not in _JS_TYPES):
            continue
        if text.strip():
            found.append(text)
    return found


def externalize_inline_scripts(html: str, assets: Path, url_prefix: str) -> str:
    """`html` with each inline script given a `src`: a file in `assets` (served at
    `url_prefix`) holding the same text, named by its hash. The text stays: the
    browser ignores it once there is a `src`, and React's hydration finds the
    element it rendered. A module script loses `async` (module scripts wait for
    the document either way): React's hydration skips async scripts that have a
    `src`, as third-party ones."""

    def replace(match: re.Match[str]) -> str:
        attributes, text = match.groups()
        kind = _TYPE.search(attributes)
        if (
            _SRC.search(attributes)
            or (kind and kind.group(1).lower() not in _JS_TYPES)
            or not text.strip()
        ):
            return match.group(0)
        name = f"inline-{hashlib.sha256(text.encode()).hexdigest()[:16]}.js"
        file = assets / name
        if not file.exists():
            file.write_text(text, encoding="utf-8")
        if kind and kind.group(1).lower() == "module":
            attributes = _ASYNC.sub("", attributes)
        return f'<script{attributes} src="{url_prefix}{name}">{text}</script>'

    return _SCRIPT.sub(replace, html)


def externalize_site(static_dir: Path, url_prefix: str = "/assets/") -> int:
    """Every page in the built site `static_dir` without inline script text to
    run (see `externalize_inline_scripts`); how many pages changed."""
    assets = static_dir / "assets"
    assets.mkdir(exist_ok=True)
    changed = 0
    for page in sorted(static_dir.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        moved = externalize_inline_scripts(html, assets, url_prefix)
        if moved != html:
            page.write_text(moved, encoding="utf-8")
            changed += 1
    return changed


def _is_html(headers: MutableHeaders) -> bool:
    return headers.get("content-type", "").lower().startswith("text/html")


def with_security_headers(app: ASGIApp, skip: tuple[str, ...] | None = None) -> ASGIApp:
    """`app` (Reflex's ASGI app in prod, which serves the built pages) with
    `PAGE_HEADERS` on its HTML answers and `nosniff` on its other HTTP answers.
    Websockets and paths under `skip` (default: Reflex's own routes, events, ping,
    upload, from its `backend_path`) pass untouched; a header the answer already
    has is kept."""
    if skip is None:
        # Here, not at import: rxconfig.py imports this module before Reflex's config exists.
        from pingapp.reflex_internals import reflex_paths

        skip = reflex_paths()

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or any(
            path == prefix or path.startswith(prefix + "/") for prefix in skip
        ):
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                extra = PAGE_HEADERS if _is_html(headers) else _NOSNIFF
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


_NOSNIFF = {"X-Content-Type-Options": "nosniff"}

# Vite's dev server (make run): a plugin that sends the headers, with the hashes of
# the inline scripts of each HTML answer added to script-src. The answer is held
# until it ends (the page is small), so the header names every script it has.
_VITE_PLUGIN = r"""
import { createHash } from "crypto";

function pingappSecurityHeaders(policy, headers) {
  const scripts = /<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi;
  const runnable = (attributes) => {
    if (/\ssrc\s*=/i.test(attributes)) return false;
    const type = /\stype\s*=\s*["']?([^"'\s>]*)/i.exec(attributes);
    const types = ["", "module", "text/javascript", "application/javascript"];
    return !type || types.includes(type[1].toLowerCase());
  };
  const withHashes = (html) => {
    const hashes = new Set();
    for (const [, attributes, text] of html.matchAll(scripts)) {
      if (!runnable(attributes) || !text.trim()) continue;
      const normal = text.replace(/\r\n?/g, "\n");
      hashes.add(`'sha256-${createHash("sha256").update(normal, "utf8").digest("base64")}'`);
    }
    return policy
      .split("; ")
      .map((d) => (d.startsWith("script-src ") ? [d, ...hashes].join(" ") : d))
      .join("; ");
  };
  return {
    name: "pingapp-security-headers",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
        const chunks = [];
        let head = null;
        let html = null;
        const { write, end, writeHead } = res;
        // Node's own write/end call res.writeHead: give the originals back first.
        const restore = () => Object.assign(res, { write, end, writeHead });
        const decide = () => {
          if (html === null) {
            const type = String(res.getHeader("content-type") || "").toLowerCase();
            html = type.startsWith("text/html");
            if (!html) restore();
          }
          return html;
        };
        const bytes = (chunk, encoding) =>
          Buffer.isBuffer(chunk)
            ? chunk
            : Buffer.from(chunk, typeof encoding === "string" ? encoding : "utf8");
        res.writeHead = function (status, ...rest) {
          const reason = typeof rest[0] === "string" ? rest.shift() : undefined;
          const given = rest[0];
          if (given && !Array.isArray(given)) {
            for (const [name, value] of Object.entries(given)) res.setHeader(name, value);
          } else if (given) {
            restore();
            return res.writeHead(status, ...(reason ? [reason] : []), given);
          }
          if (!decide()) return writeHead.call(res, status, ...(reason ? [reason] : []));
          head = [status, ...(reason ? [reason] : [])];
          return res;
        };
        res.write = function (chunk, encoding, callback) {
          if (!decide()) return write.call(res, chunk, encoding, callback);
          chunks.push(bytes(chunk, encoding));
          const done = typeof encoding === "function" ? encoding : callback;
          if (done) process.nextTick(done);
          return true;
        };
        res.end = function (chunk, encoding, callback) {
          if (!decide()) return end.call(res, chunk, encoding, callback);
          if (typeof chunk === "function") [chunk, callback] = [undefined, chunk];
          if (typeof encoding === "function") [encoding, callback] = [undefined, encoding];
          if (chunk) chunks.push(bytes(chunk, encoding));
          const body = Buffer.concat(chunks);
          if (!res.hasHeader("Content-Security-Policy")) {
            res.setHeader("Content-Security-Policy", withHashes(body.toString("utf8")));
          }
          res.removeHeader("Transfer-Encoding");
          res.setHeader("Content-Length", body.length);
          restore();
          if (head) res.writeHead(...head);
          return res.end(body, callback);
        };
        next();
      });
    },
  };
}
"""
# The dev server's half of `pingapp.web.loopback`: a page asked for under another
# loopback name of this port goes to the app's origin (308, same path and query).
_VITE_LOOPBACK = r"""
function pingappLoopbackRedirect(origin) {
  const target = new URL(origin);
  const loopback = (host) =>
    host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
  const port = (url) => url.port || (url.protocol === "https:" ? "443" : "80");
  return {
    name: "pingapp-loopback-redirect",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (req.method !== "GET" && req.method !== "HEAD") return next();
        let asked;
        try {
          asked = new URL(`${target.protocol}//${req.headers.host}`);
        } catch {
          return next();
        }
        if (
          !loopback(target.hostname) ||
          !loopback(asked.hostname) ||
          asked.hostname === target.hostname ||
          port(asked) !== port(target)
        ) {
          return next();
        }
        res.statusCode = 308;
        res.setHeader("Location", target.origin + req.url);
        res.setHeader("Cache-Control", "no-store");
        res.end();
      });
    },
  };
}
"""
_DEFINE_ANCHOR = "export default defineConfig"
_PLUGINS_ANCHOR = "alwaysUseReactDomServerNode(),"


def add_to_vite_config(source: str, dev_csp: str, origin: str | None = None) -> str:
    """`.web/vite.config.js` (Reflex's template) with the dev server's headers and,
    given the app's `origin`, its redirect of other loopback names there."""
    if "pingappSecurityHeaders" in source:
        return source
    if _DEFINE_ANCHOR not in source or _PLUGINS_ANCHOR not in source:
        msg = (
            "pingapp.web.headers cannot add the dev server's security headers to "
            f"vite.config.js: {_DEFINE_ANCHOR!r} or {_PLUGINS_ANCHOR!r} is gone "
            "(Reflex's template changed)."
        )
        raise RuntimeError(msg)
    others = {name: value for name, value in PAGE_HEADERS.items() if name != _CSP}
    calls = f"pingappSecurityHeaders({json.dumps(dev_csp)}, {json.dumps(others)}),"
    functions = _VITE_PLUGIN
    if origin:
        calls = f"pingappLoopbackRedirect({json.dumps(origin)}),\n    {calls}"
        functions += _VITE_LOOPBACK
    return source.replace(_DEFINE_ANCHOR, functions + "\n" + _DEFINE_ANCHOR, 1).replace(
        _PLUGINS_ANCHOR, f"{calls}\n    {_PLUGINS_ANCHOR}", 1
    )
