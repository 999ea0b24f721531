"""pingapp.web.headers (docs/security.md 52): the policies, the built pages' scripts moved
to files, the ASGI wrapper `make prod` uses, and the dev server's middleware
(run under the project's Node against a real http server)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from reflex_base.compiler.templates import vite_config_template
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

import rxconfig
from pingapp.web import headers
from pingapp.web.headers import (
    PAGE_HEADERS,
    PAGE_POLICY,
    add_to_vite_config,
    dev_policy,
    docs_policy,
    externalize_inline_scripts,
    externalize_site,
    inline_scripts,
    script_hash,
    with_security_headers,
)
from tests.support.csp import directives

NODE = rxconfig.NODE_BIN / "node"

# The shape of a page `react-router build` writes (scripts abridged).
PAGE = """<!DOCTYPE html><html lang="en"><head><script>
document.documentElement.classList.add("dark");
</script><meta charSet="utf-8"/><link rel="modulepreload" href="/assets/root-Ab12.js"/>
</head><body><div>hello</div><script>((key) => { sessionStorage.getItem(key) })("k")</script>
<script>window.__reactRouterContext = {"ssr":false};</script>
<script type="module" async="">import * as route0 from "/assets/root-Ab12.js";
import("/assets/entry.client-Cd34.js");</script>
<script id="_R_">requestAnimationFrame(function(){$RT=performance.now()});</script>
<script type="application/json" id="data">{"a": 1}</script>
<script src="/assets/already-a-file.js"></script>
<script></script></body></html>"""


@pytest.mark.parametrize(
    "policy",
    [
        PAGE_POLICY,
        dev_policy("http://localhost:8000"),
        docs_policy(["console.log(1)"], ["https://idp.example.test"]),
    ],
    ids=["pages", "dev", "docs"],
)
def test_no_policy_allows_eval_or_inline_scripts_or_framing(policy: str) -> None:
    parsed = directives(policy)
    assert "'unsafe-eval'" not in policy
    assert "'unsafe-inline'" not in parsed["script-src"]
    assert parsed["script-src"][0] == "'self'"
    assert parsed["frame-ancestors"] == ["'none'"]
    assert parsed["object-src"] == ["'none'"]
    assert parsed["default-src"] == ["'self'"]


def test_the_pages_headers() -> None:
    assert PAGE_HEADERS["Content-Security-Policy"] == PAGE_POLICY
    assert directives(PAGE_POLICY)["script-src"] == ["'self'"]
    assert directives(PAGE_POLICY)["connect-src"] == ["'self'"]
    assert PAGE_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert PAGE_HEADERS["Referrer-Policy"] == "no-referrer"


def test_dev_policy_reaches_the_backend_on_its_own_port() -> None:
    parsed = directives(dev_policy("http://localhost:8001/"))
    assert parsed["connect-src"] == ["'self'", "http://localhost:8001", "ws://localhost:8001"]
    assert parsed["img-src"] == ["'self'", "data:", "http://localhost:8001"]
    parsed = directives(dev_policy("https://app.example.org"))
    assert parsed["connect-src"] == ["'self'", "https://app.example.org", "wss://app.example.org"]


def test_docs_policy_names_its_scripts_by_hash_and_the_token_endpoint() -> None:
    parsed = directives(docs_policy(["a()", "b()", "a()"], ["https://idp.example.test"]))
    assert parsed["script-src"] == ["'self'", *sorted({script_hash("a()"), script_hash("b()")})]
    assert parsed["connect-src"] == ["'self'", "https://idp.example.test"]


def test_script_hash_is_the_browsers() -> None:
    # CSP3's example: the hash of `alert('Hello, world.');`.
    assert script_hash("alert('Hello, world.');") == (
        "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
    )
    # The HTML parser reads CR LF as LF before the browser hashes the text.
    assert script_hash("a();\r\nb();") == script_hash("a();\nb();")


def test_inline_scripts_are_the_ones_the_browser_runs() -> None:
    found = inline_scripts(PAGE)
    assert len(found) == 5
    assert found[0].strip() == 'document.documentElement.classList.add("dark");'
    assert not any('"a": 1' in text for text in found)  # a data block is not run


def test_externalized_page_runs_no_inline_text(tmp_path: Path) -> None:
    moved = externalize_inline_scripts(PAGE, tmp_path, "/assets/")
    assert inline_scripts(moved) == []
    tags = re.findall(r"<script\b[^>]*>", moved)
    assert len(tags) == len(re.findall(r"<script\b[^>]*>", PAGE))
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5
    for text in inline_scripts(PAGE):
        # The text stays (React's hydration compares it); the browser runs the file.
        name = next(f.name for f in files if f.read_text() == text)
        assert f'src="/assets/{name}">{text}</script>' in moved
    # React's hydration skips an async script that has a src: the module one is
    # deferred instead. The others keep their place (and order) in the document.
    assert re.search(r'<script type="module" src="/assets/inline-[0-9a-f]{16}\.js">', moved)
    assert "async" not in moved
    assert re.search(r'<script id="_R_" src="/assets/inline-[0-9a-f]{16}\.js">', moved)
    assert '<script type="application/json" id="data">{"a": 1}</script>' in moved
    assert '<script src="/assets/already-a-file.js"></script>' in moved
    assert "<script></script>" in moved
    # Again: nothing more to move.
    assert externalize_inline_scripts(moved, tmp_path, "/assets/") == moved


def test_externalize_site_moves_every_pages_scripts(tmp_path: Path) -> None:
    (tmp_path / "ping").mkdir()
    for page in ("index.html", "ping.html", "ping/index.html"):
        (tmp_path / page).write_text(PAGE)
    (tmp_path / "a11y.css").write_text("body {}")
    assert externalize_site(tmp_path, "/base/assets/") == 3
    for page in ("index.html", "ping.html", "ping/index.html"):
        html = (tmp_path / page).read_text()
        assert inline_scripts(html) == []
        for src in re.findall(r'src="/base/assets/([^"]+)"', html):
            assert (tmp_path / "assets" / src).is_file()
    # Pages share files: one per distinct script.
    assert len(list((tmp_path / "assets").glob("inline-*.js"))) == 5


def backend_app() -> Starlette:
    async def page(_: object) -> HTMLResponse:
        return HTMLResponse("<html>page</html>")

    async def own_policy(_: object) -> HTMLResponse:
        return HTMLResponse("<html>docs</html>", headers={"Content-Security-Policy": "x"})

    async def data(_: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def ping(_: object) -> PlainTextResponse:
        return PlainTextResponse("<html>", media_type="text/html")

    return Starlette(
        routes=[
            Route("/", page),
            Route("/own", own_policy),
            Route("/data", data),
            Route("/_reflex/ping", ping),
        ]
    )


async def test_the_wrapper_adds_the_page_headers_to_html_only() -> None:
    transport = httpx2.ASGITransport(app=with_security_headers(backend_app()))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = await client.get("/")
        for name, value in PAGE_HEADERS.items():
            assert page.headers.get_list(name) == [value], name
        # An answer with its own policy keeps it.
        own = await client.get("/own")
        assert own.headers.get_list("content-security-policy") == ["x"]
        data = await client.get("/data")
        assert "content-security-policy" not in data.headers
        assert data.headers["x-content-type-options"] == "nosniff"
        # Reflex's own routes pass untouched.
        reflex_route = await client.get("/_reflex/ping")
        assert "content-security-policy" not in reflex_route.headers
        assert "x-content-type-options" not in reflex_route.headers


async def test_the_wrapper_leaves_websockets_alone() -> None:
    seen: list[tuple[Scope, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        del receive
        seen.append((scope, send))

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        del message

    scope: Scope = {"type": "websocket", "path": "/ws", "headers": []}
    await with_security_headers(app)(scope, receive, send)
    assert seen == [(scope, send)]


def reflex_vite_config() -> str:
    """vite.config.js as reflex 0.10 writes it for `reflex run`."""
    return vite_config_template(
        base="/", hmr=True, force_full_reload=False, experimental_hmr=False, sourcemap=False
    )


def test_rxconfig_puts_the_dev_headers_into_vite_config() -> None:
    plugins = [p for p in rxconfig.config.plugins if isinstance(p, rxconfig.SecurityHeaders)]
    assert len(plugins) == 1
    tasks: list[tuple[str, Callable[[str], str]]] = []
    plugins[0].pre_compile(add_modify_task=lambda path, task: tasks.append((path, task)))
    [(path, task)] = tasks
    assert path == "vite.config.js"
    config = task(reflex_vite_config())
    assert json.dumps(dev_policy(rxconfig.config.api_url)) in config
    assert "pingappSecurityHeaders(" in config.split("plugins: [", 1)[1]
    assert task(config) == config  # once


def test_rxconfig_moves_the_built_pages_scripts(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE)
    rxconfig.SecurityHeaders().post_build(static_dir=tmp_path)
    assert inline_scripts((tmp_path / "index.html").read_text()) == []


def test_a_changed_vite_template_is_reported() -> None:
    with pytest.raises(RuntimeError, match="Reflex's template changed"):
        add_to_vite_config("export default {}", PAGE_POLICY)


needs_node = pytest.mark.skipif(not NODE.exists(), reason="the project's Node is not installed")

# The middleware in front of a handler that answers the way React Router's dev
# server does (writeHead with a reason and headers, the body in chunks), one that
# sends JavaScript, and one that sets its headers one by one.
HARNESS = """
import http from "http";
const plugin = pingappSecurityHeaders(POLICY, OTHERS);
const stack = [];
plugin.configureServer({ middlewares: { use: (f) => stack.push(f) } });
const PAGE = '<html><head><script>one()</script></head><body>' +
  '<script type="module" async="">import("/x.js")</script><script src="/y.js"></script>' +
  '<script type="application/json">{}</script></body></html>';
const server = http.createServer((req, res) => {
  stack[0](req, res, () => {
    if (req.url === "/page") {
      res.writeHead(200, "OK", { "content-type": "text/html", "x-other": ["a", "b"] });
      const half = PAGE.length >> 1;
      res.write(PAGE.slice(0, half));
      res.write(Buffer.from(PAGE.slice(half)), () => res.end());
    } else if (req.url === "/plain") {
      res.statusCode = 404;
      res.setHeader("Content-Type", "text/html; charset=utf-8");
      res.end(PAGE);
    } else {
      res.writeHead(200, { "content-type": "text/javascript" });
      res.end("export {}");
    }
  });
});
server.listen(0, "127.0.0.1", async () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  const out = {};
  for (const path of ["/page", "/plain", "/app.js"]) {
    const r = await fetch(base + path);
    out[path] = { status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() };
  }
  console.log(JSON.stringify(out));
  server.close();
});
"""


@needs_node
def test_dev_middleware_sends_the_policy_with_the_pages_script_hashes(tmp_path: Path) -> None:
    others = {k: v for k, v in PAGE_HEADERS.items() if k != "Content-Security-Policy"}
    policy = dev_policy("http://localhost:8000")
    script = tmp_path / "harness.mjs"
    script.write_text(
        headers._VITE_PLUGIN  # the code add_to_vite_config puts into vite.config.js
        + HARNESS.replace("POLICY", json.dumps(policy)).replace("OTHERS", json.dumps(others))
    )
    done = subprocess.run(
        [str(NODE), str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    answers = json.loads(done.stdout)
    for path in ("/page", "/plain"):
        answer = answers[path]
        page_policy = answer["headers"]["content-security-policy"]
        expected = directives(policy)
        expected["script-src"] += [script_hash("one()"), script_hash('import("/x.js")')]
        assert directives(page_policy) == expected, path
        assert answer["body"].startswith("<html>") and answer["body"].endswith("</html>")
        assert answer["headers"]["content-length"] == str(len(answer["body"]))
        for name, value in others.items():
            assert answer["headers"][name.lower()] == value
    assert answers["/page"]["headers"]["x-other"] == "a, b"
    assert answers["/plain"]["status"] == 404
    script_answer = answers["/app.js"]
    assert "content-security-policy" not in script_answer["headers"]
    assert script_answer["headers"]["x-content-type-options"] == "nosniff"
    assert script_answer["body"] == "export {}"


@needs_node
def test_the_changed_vite_config_is_valid_javascript(tmp_path: Path) -> None:
    config = tmp_path / "vite.config.mjs"
    config.write_text(add_to_vite_config(reflex_vite_config(), dev_policy("http://x:1")))
    # node --check parses the module (its imports are not resolved).
    subprocess.run([str(NODE), "--check", str(config)], check=True, timeout=60)


LOOPBACK_HARNESS = """
import http from "http";
const plugin = pingappLoopbackRedirect("http://localhost:3000");
const stack = [];
plugin.configureServer({ middlewares: { use: (f) => stack.push(f) } });
const server = http.createServer((req, res) => stack[0](req, res, () => res.end("page")));
const ask = (port, method, host) =>
  new Promise((resolve) => {
    const req = http.request(
      { host: "127.0.0.1", port, method, path: "/ping?x=%20y", headers: { host } },
      (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve([res.statusCode, res.headers.location || null, body]));
      },
    );
    req.end();
  });
server.listen(0, "127.0.0.1", async () => {
  const port = server.address().port;
  const out = [];
  for (const [method, host] of [
    ["GET", "127.0.0.1:3000"],
    ["HEAD", "[::1]:3000"],
    ["GET", "localhost:3000"],
    ["GET", "127.0.0.1:3001"],
    ["GET", "example.test:3000"],
    ["POST", "127.0.0.1:3000"],
  ]) {
    out.push(await ask(port, method, host));
  }
  console.log(JSON.stringify(out));
  server.close();
});
"""


@needs_node
def test_dev_server_sends_other_loopback_names_to_the_origin(tmp_path: Path) -> None:
    script = tmp_path / "loopback.mjs"
    script.write_text(headers._VITE_LOOPBACK + LOOPBACK_HARNESS)
    done = subprocess.run(
        [str(NODE), str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    moved = ["http://localhost:3000/ping?x=%20y"]
    assert json.loads(done.stdout) == [
        [308, *moved, ""],
        [308, *moved, ""],
        [200, None, "page"],
        [200, None, "page"],
        [200, None, "page"],
        [200, None, "page"],
    ]


def test_the_dev_server_gets_the_loopback_redirect_with_an_origin() -> None:
    config = add_to_vite_config(reflex_vite_config(), PAGE_POLICY, "http://localhost:3000")
    plugins = config.split("plugins: [", 1)[1]
    assert 'pingappLoopbackRedirect("http://localhost:3000")' in plugins
    assert "pingappLoopbackRedirect" not in add_to_vite_config(reflex_vite_config(), PAGE_POLICY)
