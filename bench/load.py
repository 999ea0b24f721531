"""Many signed-in sessions over Reflex's own websocket protocol, pinging at a steady rate.

    .venv/bin/python bench/load.py [--sessions 100,300,1000] [--duration 30] [--rate 0.2]
                                   [--sign-in-concurrency 20] [--url URL | --redis]
                                   [--servers granian,uvicorn] [--redis --backends 1,2]
                                   [--baseline REF]

Without --url it starts `make prod` on a free port (and stops it afterwards), once
per server in --servers (Reflex's REFLEX_USE_GRANIAN), and prints their tables
together; with --baseline, first that of an earlier commit (checked out by
`bench/baseline.py`), for before / after in one run;
with --redis it starts redis-server, `--backends` backends (`make backend`) on it and
nginx in front of them, as tests/deploy does (`--backends 1,2`: one set-up, then the
other, tables together). Only 127.0.0.1 / localhost is ever contacted.

Each session is what one browser tab does, without the browser: an Engine.IO v4 /
Socket.IO websocket to `/_reflex/_event/?token=<client token>` whose CONNECT packet
carries the `hydrate_and_load` boot event (as `state.js` sends it), then

1. on `/ping`: hydrated, signed out (the Log In link is `{backend}/auth/login`);
2. by HTTP: `/auth/login?return_to=/ping`, which sets the `pingapp_login` cookie
   binding the login to this "browser" and redirects to the provider; the provider's
   pages: GET authorize, the sign-in form (POST user and password with its hidden
   fields), the consent form (POST allow), until the redirect to `{frontend}/callback?code&state`;
3. a new websocket for `/callback?code&state` with the login cookie (the callback
   page's on_load), whose answer sets `AuthState.next_url` to
   `{backend}/auth/session?ticket=...`;
4. GET that ticket URL with the login cookie, which sets the HttpOnly
   `pingapp_session` cookie;
5. a new websocket for `/ping` with that Cookie header: hydrated, signed in.

Sessions sign in `--sign-in-concurrency` at a time. Levels are cumulative: for
`--sessions 100,300,1000` it signs in 100, measures, signs in 200 more, and so on.
At each level, once every session is signed in and idle, it reads the backend's
resident memory (the sum of RSS over the process tree listening on the port, from
/proc) and then every session sends `ping_private` `--rate` times a second for
`--duration` seconds, each timed from sending the event to the delta that carries
the answer's `message`. CPU is the backend tree's utime+stime over the ping phase
(100 % = one core). Memory per session is (RSS idle at this level - RSS before the
first session) / sessions. The load average is printed next to each level: the
machine has other work on it and this script's own client runs on the same cores.

Every loop is bounded by a count and a time limit.

Figures from past runs, and what limits them: bench/results.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import html
import json
import os
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import wsproto
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import reflex as rx  # noqa: E402 - after the repository is on sys.path
from reflex.utils.format import format_event_handler  # noqa: E402

from bench import baseline  # noqa: E402
from bench.baseline import checkout, wait_for_quiet  # noqa: E402
from pingapp.auth.state import AuthState  # noqa: E402
from pingapp.oidc.cookies import LOGIN_COOKIE, SESSION_COOKIE  # noqa: E402
from pingapp.ping.state import PingState  # noqa: E402
from tests.support.app import PRIVATE_MESSAGE, start_app  # noqa: E402
from tests.support.deploy import StaticSite, backend, start_backends, start_nginx  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.redis import start_redis  # noqa: E402

NAMESPACE = "/_reflex/_event"
EVENT_PATH = NAMESPACE + "/"
# The names the frontend uses for the states and their events (Reflex derives them
# from the classes' modules and names).
ROOT_STATE = rx.State.get_full_name()
AUTH_STATE = AuthState.get_full_name()
PING_STATE = PingState.get_full_name()
HYDRATE = format_event_handler(rx.State.hydrate_and_load)  # pyright: ignore[reportArgumentType]
PING_PRIVATE = format_event_handler(PingState.ping_private)  # pyright: ignore[reportArgumentType]
COOKIE_NAME = SESSION_COOKIE
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
#: Every simulated browser signs in from 127.0.0.1: the app's per-address limit
#: of sign-ins a minute (LOGIN_RATE_LIMIT) is lifted for the benchmark.
MANY_SIGN_INS = {"LOGIN_RATE_LIMIT": "100000"}

#: Seconds any one step (a connect, a hydration, an HTTP call, a ping) may take.
STEP_TIMEOUT = 20.0
#: Frames one websocket may receive in its lifetime (a bound on the reader loop).
MAX_FRAMES = 1_000_000


class LoadError(Exception):
    """A session step that failed; the message says which and why."""


# --- Engine.IO v4 / Socket.IO over one websocket --------------------------------------


class Socket:
    """One Engine.IO v4 websocket (no polling) on Reflex's event namespace."""

    def __init__(self, on_update: Callable[[dict[str, Any]], None]) -> None:
        self.on_update = on_update
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected: asyncio.Future[None] | None = None
        self.closed = False
        self.close_reason = ""

    async def connect(
        self, host: str, port: int, token: str, auth: dict[str, Any], cookie: str = ""
    ) -> None:
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=2**22), STEP_TIMEOUT
        )
        query = urllib.parse.urlencode({"EIO": "4", "transport": "websocket", "token": token})
        headers = [(b"origin", f"http://{host}:{port}".encode())]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self._send(
            Request(host=f"{host}:{port}", target=f"{EVENT_PATH}?{query}", extra_headers=headers)
        )
        self.task = asyncio.create_task(self._read(json.dumps(auth)))
        await asyncio.wait_for(asyncio.shield(self.connected), STEP_TIMEOUT)

    def _send(self, event: Any) -> None:
        if self.writer is None or self.closed:
            raise LoadError("send on a closed websocket")
        self.writer.write(self.ws.send(event))

    def emit(self, event: dict[str, Any]) -> None:
        self._send(TextMessage(data=f"42{NAMESPACE}," + json.dumps(["event", event])))

    def _fail(self, reason: str) -> None:
        self.closed = True
        self.close_reason = self.close_reason or reason
        if self.connected is not None and not self.connected.done():
            self.connected.set_exception(LoadError(reason))

    async def _read(self, auth: str) -> None:
        assert self.reader is not None
        text = ""
        frames = 0
        try:
            while frames < MAX_FRAMES and not self.closed:
                data = await self.reader.read(2**16)
                if not data:
                    self._fail("connection closed by the server")
                    return
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, AcceptConnection):
                        continue
                    if isinstance(event, RejectConnection):
                        self._fail(f"websocket rejected ({event.status_code})")
                        return
                    if isinstance(event, Ping):
                        self._send(event.response())
                    elif isinstance(event, CloseConnection):
                        self._fail(f"websocket closed ({event.code} {event.reason})")
                        return
                    elif isinstance(event, TextMessage):
                        text += event.data
                        if event.message_finished:
                            frames += 1
                            self._packet(text, auth)
                            text = ""
                    elif isinstance(event, Message):
                        self._fail("unexpected binary frame")
                        return
        except (OSError, LocalProtocolError) as error:
            self._fail(f"{type(error).__name__}: {error}")
        except Exception as error:
            self._fail(f"{type(error).__name__}: {error}")
            raise

    def _packet(self, text: str, auth: str) -> None:
        kind, body = text[:1], text[1:]
        if kind == "0":  # Engine.IO open: connect to the namespace, boot event inside
            self._send(TextMessage(data=f"40{NAMESPACE},{auth}"))
        elif kind == "2":  # Engine.IO ping (the server pings in v4)
            self._send(TextMessage(data="3"))
        elif kind == "1":
            self._fail("Engine.IO close")
        elif kind == "4":  # Socket.IO packet
            sio, rest = body[:1], body[1:]
            if rest.startswith("/"):
                _, _, rest = rest.partition(",")
            if sio == "0" and self.connected is not None and not self.connected.done():
                self.connected.set_result(None)
            elif sio == "4":
                self._fail(f"namespace connect refused: {rest[:200]}")
            elif sio == "1":
                self._fail("namespace disconnected by the server")
            elif sio == "2":
                name, *args = json.loads(rest)
                if name == "event" and args and isinstance(args[0], dict):
                    self.on_update(args[0])

    async def close(self) -> None:
        if self.writer is not None and not self.closed:
            with contextlib.suppress(Exception):
                self._send(TextMessage(data=f"41{NAMESPACE},"))
                self._send(CloseConnection(code=1000))
                await asyncio.wait_for(self.writer.drain(), 5)
            # Until the server has closed its side too: a new socket for the same
            # token before that is a "duplicate tab" to Reflex (a new token), and the
            # old socket's late cleanup unlinks the new one (see the report).
            if self.task is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(self.task), 5)
            await asyncio.sleep(0.05)
        self.closed = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 5)


# --- one browser tab ----------------------------------------------------------------


def router_data(url: str) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    data: dict[str, Any] = {
        "pathname": parts.path or "/",
        "asPath": (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    }
    if parts.query:
        data["query"] = dict(urllib.parse.parse_qsl(parts.query))
    return data


class Session:
    """One tab: its client token, its session cookie, its open websocket."""

    def __init__(self, base: str, number: int) -> None:
        self.base = base
        parts = urllib.parse.urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.number = number
        self.token = str(uuid.uuid4())
        self.cookie = ""
        self.socket: Socket | None = None
        self.hydrated = False
        self.signed_in = False
        self.message = ""
        self.ok = True
        self.navigations: list[str] = []
        #: The last error the app showed (AuthState.error_title / error_detail).
        self.error = ""
        #: Updates received on the current websocket.
        self.updates = 0
        self._waiter: tuple[Callable[[], bool], asyncio.Future[None]] | None = None

    def _update(self, update: dict[str, Any]) -> None:
        self.updates += 1
        delta = update.get("delta") or {}
        root = delta.get(ROOT_STATE, {})
        if "is_hydrated_rx_state_" in root:
            self.hydrated = bool(root["is_hydrated_rx_state_"])
        auth = delta.get(AUTH_STATE, {})
        if auth.get("error_title_rx_state_"):
            self.error = (
                f"{auth['error_title_rx_state_']}: {auth.get('error_detail_rx_state_', '')}"
            )
        if "signed_in_rx_state_" in auth:
            self.signed_in = bool(auth["signed_in_rx_state_"])
        ping = delta.get(PING_STATE, {})
        if "message_rx_state_" in ping:
            self.message = ping["message_rx_state_"]
        if "ok_rx_state_" in ping:
            self.ok = bool(ping["ok_rx_state_"])
        if auth.get("next_url_rx_state_"):
            self.navigations.append(str(auth["next_url_rx_state_"]))
        if self._waiter is not None:
            test, future = self._waiter
            if not future.done() and test():
                future.set_result(None)

    async def until(self, test: Callable[[], bool], what: str, limit: float = STEP_TIMEOUT):
        if test():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = (test, future)
        try:
            await asyncio.wait_for(future, limit)
        except TimeoutError as error:
            reason = "; ".join(
                filter(
                    None,
                    [
                        self.socket.close_reason if self.socket else "",
                        self.error,
                        f"{self.updates} updates, hydrated={self.hydrated}",
                    ],
                )
            )
            message = f"timeout waiting for {what}" + (f" ({reason})" if reason else "")
            raise LoadError(message) from error
        finally:
            self._waiter = None

    async def open(self, url: str, cookie: str = "") -> None:
        """A page load of `url`: a new websocket that hydrates and runs its on_load;
        `cookie`: the Cookie header (default: the session cookie, once there is one)."""
        await self.close()
        self.hydrated = False
        self.updates = 0
        self.navigations.clear()  # this page's only (they may come with the ack)
        self.socket = Socket(self._update)
        boot = {"name": HYDRATE, "payload": {}, "router_data": router_data(url)}
        if not cookie and self.cookie:
            cookie = f"{COOKIE_NAME}={self.cookie}"
        await self.socket.connect(self.host, self.port, self.token, {"event": boot}, cookie)

    def emit(self, name: str, payload: dict[str, Any], url: str) -> None:
        if self.socket is None:
            raise LoadError("no websocket")
        self.socket.emit({"name": name, "payload": payload, "router_data": router_data(url)})

    async def next_navigation(self, what: str) -> str:
        """The first full page load (`AuthState.next_url`) this page was sent to."""
        await self.until(lambda: bool(self.navigations), what)
        url = self.navigations[0]
        self.navigations.clear()
        return url

    async def sign_in(self, user: str, password: str) -> None:
        home = self.base + "/ping"
        await self.open(home)
        await self.until(lambda: self.hydrated, "hydration of /ping")
        login = f"{self.base}/auth/login?return_to=/ping"
        callback, login_cookie = await provider_sign_in(self.base, login, user, password)
        await self.open(callback, f"{LOGIN_COOKIE}={login_cookie}")
        ticket_url = await self.next_navigation("the callback's redirect to /auth/session")
        check_local(ticket_url)
        async with httpx2.AsyncClient(timeout=STEP_TIMEOUT) as client:
            answer = await client.get(
                ticket_url, headers={"cookie": f"{LOGIN_COOKIE}={login_cookie}"}
            )
        if answer.status_code != 303 or COOKIE_NAME not in answer.cookies:
            raise LoadError(f"/auth/session answered {answer.status_code} without the cookie")
        self.cookie = answer.cookies[COOKIE_NAME]
        await self.open(home)
        await self.until(lambda: self.hydrated and self.signed_in, "signed-in hydration")

    async def ping(self, limit: float) -> float:
        """Seconds from sending ping_private to the delta that carries its message."""
        self.message = ""
        started = time.perf_counter()
        self.emit(PING_PRIVATE, {}, self.base + "/ping")
        await self.until(lambda: bool(self.message), "the ping's answer", limit)
        elapsed = time.perf_counter() - started
        if not self.ok or not self.message.startswith(PRIVATE_MESSAGE):
            raise LoadError(f"ping answered {self.message[:120]!r}")
        return elapsed

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            self.socket = None


def check_local(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in LOCAL_HOSTS:
        raise LoadError(f"refusing to contact {host!r}: only 127.0.0.1 / localhost")


def form_of(page: str) -> tuple[str, dict[str, str], list[str]]:
    """The first form's action, its hidden fields and its checked (enabled) scopes."""
    action = re.search(r'<form method="post" action="([^"]*)"', page)
    if action is None:
        raise LoadError("the provider's page has no form")
    hidden = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page)
    }
    scopes = [
        html.unescape(value)
        for tag, value in re.findall(r'(<input type="checkbox"[^>]*value="([^"]*)"[^>]*>)', page)
        if " checked" in tag and " disabled" not in tag
    ]
    return html.unescape(action.group(1)), hidden, scopes


async def provider_sign_in(base: str, login: str, user: str, password: str) -> tuple[str, str]:
    """From the app's /auth/login hop through the embedded provider's pages to the
    redirect to the callback; that URL and the login cookie the hop set."""
    callback = base + "/callback"
    url, method = login, "GET"
    data: dict[str, Any] | None = None
    async with httpx2.AsyncClient(timeout=STEP_TIMEOUT) as client:
        for _ in range(12):
            check_local(url)
            answer = await client.request(method, url, data=data)
            if answer.is_redirect:
                url = urllib.parse.urljoin(url, answer.headers["location"])
                if url.startswith(callback + "?"):
                    login_cookie = client.cookies.get(LOGIN_COOKIE)
                    if not login_cookie:
                        raise LoadError("/auth/login set no login cookie")
                    return url, login_cookie
                method, data = "GET", None
                continue
            page = answer.text
            action, fields, scopes = form_of(page)
            method, url = "POST", urllib.parse.urljoin(url, action)
            if 'id="username"' in page:
                if answer.status_code != 200:
                    raise LoadError(f"sign-in refused ({answer.status_code})")
                data = {**fields, "username": user, "password": password}
            elif 'id="consent-allow"' in page:
                data = {**fields, "scope": scopes, "decision": "allow"}
            else:
                raise LoadError(f"unexpected provider page ({answer.status_code})")
    raise LoadError("the provider did not redirect to the callback")


# --- the backend's processes, from /proc ---------------------------------------------


def listening_pids(port: int) -> set[int]:
    """The processes holding a listening socket on `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(f"socket:[{fields[9]}]")
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if str(Path(fd.path).readlink()) in inodes:
                        found.add(int(entry.name))
                        break
    return found


def stat_of(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def process_tree(port: int) -> list[int]:
    """The listening processes' topmost one and all its descendants."""
    holders = listening_pids(port)
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := stat_of(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    roots = {pid for pid in holders if parents.get(pid) not in holders}
    tree, todo = set(), list(roots)
    for _ in range(10_000):
        if not todo:
            break
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(child for child, parent in parents.items() if parent == pid)
    return sorted(tree)


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        if fields := stat_of(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- the run ------------------------------------------------------------------------


@dataclasses.dataclass
class Level:
    sessions: int
    sign_in_s: float = 0.0
    sign_in_errors: int = 0
    rss: int = 0
    per_session: float = 0.0
    pings: int = 0
    errors: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0
    client_cpu: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    error_kinds: dict[str, int] = dataclasses.field(default_factory=dict)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[int(q * 100) - 1]


async def sign_in_all(
    sessions: list[Session], users: list[tuple[str, str]], concurrency: int, level: Level
) -> list[Session]:
    gate = asyncio.Semaphore(concurrency)
    good: list[Session] = []

    async def one(session: Session) -> None:
        async with gate:
            user, password = users[session.number % len(users)]
            for attempt in range(2):
                try:
                    await asyncio.wait_for(session.sign_in(user, password), 4 * STEP_TIMEOUT)
                    good.append(session)
                    return
                except (LoadError, OSError, httpx2.HTTPError, TimeoutError) as error:
                    word = "sign-in failed" if attempt else "sign-in retried"
                    kind = f"{word}: {type(error).__name__}: " + str(error).split(" (")[0][:160]
                    level.error_kinds[kind] = level.error_kinds.get(kind, 0) + 1
                    await session.close()
                    if attempt:
                        level.sign_in_errors += 1

    await asyncio.gather(*(one(s) for s in sessions))
    return good


async def ping_all(sessions: list[Session], args: argparse.Namespace, level: Level) -> None:
    interval = 1 / args.rate
    loop = asyncio.get_running_loop()
    end = loop.time() + args.duration
    max_pings = int(args.duration * args.rate) + 2

    async def one(session: Session) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        due = loop.time()
        for _ in range(max_pings):
            if loop.time() >= end:
                return
            try:
                level.latencies.append(await session.ping(args.ping_timeout))
                level.pings += 1
            except (LoadError, OSError) as error:
                level.errors += 1
                kind = "ping: " + str(error).split(" (")[0][:160]
                level.error_kinds[kind] = level.error_kinds.get(kind, 0) + 1
                if session.socket is None or session.socket.closed:
                    return
            due = max(due + interval, loop.time())
            await asyncio.sleep(max(min(due, end) - loop.time(), 0))

    await asyncio.gather(*(one(s) for s in sessions))


async def run(base: str, ports: list[int], args: argparse.Namespace) -> list[Level]:
    users = [("alice", "alice"), ("bob", "bob")]
    counts = sorted({int(n) for n in args.sessions.split(",")})
    levels: list[Level] = []
    pids = lambda: [pid for port in ports for pid in process_tree(port)]  # noqa: E731
    print(f"backend processes: {pids()}", flush=True)
    # One warm-up session first, so lazy imports and caches are not counted per session.
    warm = Session(base, 10**6)
    await warm.sign_in(*users[0])
    await warm.ping(args.ping_timeout)
    await asyncio.sleep(2)
    rss_before = rss_bytes(pids())
    print(f"backend RSS with one warm-up session: {rss_before / 2**20:.1f} MiB", flush=True)
    sessions: list[Session] = []
    try:
        for count in counts:
            level = Level(count)
            new = [Session(base, n) for n in range(len(sessions), count)]
            started = time.perf_counter()
            sessions += await sign_in_all(new, users, args.sign_in_concurrency, level)
            level.sign_in_s = time.perf_counter() - started
            level.sessions = len(sessions)
            print(
                f"{len(sessions)} sessions signed in ({len(new)} new in "
                f"{level.sign_in_s:.1f} s, {level.sign_in_errors} failed)",
                flush=True,
            )
            await asyncio.sleep(3)  # idle
            tree = pids()
            level.rss = rss_bytes(tree)
            level.per_session = (level.rss - rss_before) / max(len(sessions), 1)
            cpu0, client0, wall0 = cpu_seconds(tree), time.process_time(), time.perf_counter()
            await ping_all(sessions, args, level)
            level.wall = time.perf_counter() - wall0
            level.cpu = (cpu_seconds(pids()) - cpu0) / level.wall
            level.client_cpu = (time.process_time() - client0) / level.wall
            level.load = os.getloadavg()
            levels.append(level)
            print(row(level), flush=True)
            if args.stop_on_target_miss and len(sessions) < count:
                break
    finally:
        await asyncio.gather(*(s.close() for s in [warm, *sessions]))
    return levels


HEADER = (
    f"{'sessions':>8} {'sign-in s':>9} {'pings':>6} {'pings/s':>7} {'p50 ms':>7} "
    f"{'p99 ms':>7} {'max ms':>7} {'errors':>6} {'RSS MiB':>8} {'KB/sess':>7} "
    f"{'CPU %':>6} {'client %':>8}  load avg 1/5/15"
)


def row(level: Level) -> str:
    ms = [x * 1000 for x in level.latencies]
    return (
        f"{level.sessions:>8} {level.sign_in_s:>9.1f} {level.pings:>6} "
        f"{level.pings / level.wall if level.wall else 0:>7.1f} {quantile(ms, 0.5):>7.1f} "
        f"{quantile(ms, 0.99):>7.1f} {max(ms, default=float('nan')):>7.1f} "
        f"{level.errors + level.sign_in_errors:>6} {level.rss / 2**20:>8.1f} "
        f"{level.per_session / 1024:>7.1f} {level.cpu * 100:>6.0f} "
        f"{level.client_cpu * 100:>8.0f}  " + "/".join(f"{x:.2f}" for x in level.load)
    )


def report(levels: list[Level], args: argparse.Namespace, setup: str) -> None:
    print()
    print(
        f"pingapp load: {setup}, ping_private every {1 / args.rate:g} s per session "
        f"for {args.duration:g} s, sign-in {args.sign_in_concurrency} at a time, "
        f"{os.cpu_count()} cores"
    )
    print(HEADER)
    for level in levels:
        print(row(level))
    print(
        "CPU %: backend process tree over the ping phase (100 = one core); client %: "
        "this script; KB/sess: (idle RSS - RSS before the first session) / sessions."
    )
    for level in levels:
        for kind, n in sorted(level.error_kinds.items()):
            print(f"  {level.sessions} sessions: {n} x {kind}")


# --- set-ups: make prod, or two backends on Redis behind nginx -------------------------


async def main_async(args: argparse.Namespace) -> int:
    if args.url:
        check_local(args.url)
        base = args.url.rstrip("/")
        port = urllib.parse.urlsplit(base).port or 80
        levels = await run(base, [args.backend_port or port], args)
        report(levels, args, f"--url {base}")
        return 0
    with tempfile.TemporaryDirectory(prefix="pingapp-load-") as tmp:
        if args.redis:
            return await redis_setup(Path(tmp), args)
        results = []
        setups = [(server, ROOT, "") for server in args.servers.split(",")]
        if args.baseline:
            tree, commit = checkout(args.baseline)
            setups.insert(0, (setups[0][0], tree, f", {commit} (before)"))
        for number, (server, root, which) in enumerate(setups):
            print(f"starting make prod on {server}{which} ...", flush=True)
            folder = Path(tmp) / f"{number}-{server}"
            folder.mkdir()
            env = {
                "REFLEX_USE_GRANIAN": "true" if server == "granian" else "false",
                **MANY_SIGN_INS,
            }
            app = await asyncio.to_thread(start_app, "prod", folder, env, root)
            try:
                await asyncio.to_thread(wait_for_quiet)
                port = urllib.parse.urlsplit(app.url).port or 80
                levels = await run(app.url, [port], args)
            finally:
                await asyncio.to_thread(app.stop)
            results.append((levels, f"make prod (one port) on {server}{which}"))
        for levels, what in results:  # together at the end, to compare
            report(levels, args, what)
    return 0


async def redis_setup(tmp: Path, args: argparse.Namespace) -> int:
    """For each count in --backends: Redis, that many `make backend`s on it, nginx in
    front; the tables together at the end."""
    results = []
    for count in (int(n) for n in args.backends.split(",")):
        folder = tmp / f"backends-{count}"
        folder.mkdir()
        levels = await redis_backends(folder, count, args)
        results.append((levels, f"{count} backend(s) on Redis behind nginx"))
    for levels, what in results:
        report(levels, args, what)
    return 0


async def redis_backends(tmp: Path, count: int, args: argparse.Namespace) -> list[Any]:
    # nginx only proxies here: a one-line page stands in for the static export.
    root = tmp / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><html><title>load</title></html>\n")
    port = free_port()
    site = StaticSite(url=f"http://localhost:{port}", port=port, root=root)
    servers: list[Any] = []
    try:
        redis = start_redis(tmp)
        servers.append(redis)
        ports = [free_port() for _ in range(count)]
        backends = [
            backend(
                f"backend{i}",
                p,
                site.url,
                tmp,
                REFLEX_REDIS_URL=redis.url,
                LOGIN_RATE_LIMIT="100000",
            )
            for i, p in enumerate(ports)
        ]
        servers += backends
        print(f"starting redis, {count} backend(s) and nginx ...", flush=True)
        # One after the other: two `reflex run`s starting together race on emptying
        # .states/ (reflex.istate.manager.reset_disk_state_manager unlinks files the
        # other one already removed: FileNotFoundError).
        for server in backends:
            await asyncio.to_thread(start_backends, server)
        nginx_dir = tmp / "nginx"
        servers.append(
            await asyncio.to_thread(start_nginx, nginx_dir, site, ports, worker_connections=8192)
        )
        return await run(site.url, ports, args)
    finally:
        for server in reversed(servers):
            await asyncio.to_thread(server.stop)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sessions", default="100,300,1000", help="levels, cumulative")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of pings a level")
    parser.add_argument("--rate", type=float, default=0.2, help="pings a second per session")
    parser.add_argument("--sign-in-concurrency", type=int, default=20)
    parser.add_argument("--ping-timeout", type=float, default=10.0, help="seconds")
    parser.add_argument("--url", help="a running app in prod mode (127.0.0.1/localhost)")
    parser.add_argument(
        "--backend-port", type=int, help="with --url: the port whose processes are measured"
    )
    parser.add_argument("--redis", action="store_true", help="backends on Redis + nginx")
    parser.add_argument(
        "--backends", default="2", help="with --redis: backend counts, in turn (1,2 compares)"
    )
    parser.add_argument(
        "--servers",
        default="granian",
        help="make prod's ASGI servers, in turn: granian, uvicorn (REFLEX_USE_GRANIAN=false; "
        "needs `pip install uvicorn gunicorn`), or both: granian,uvicorn",
    )
    baseline.add_argument(
        parser,
        "make prod of this earlier commit (a git worktree) first, on the first of "
        "--servers: before / after in one run (not with --redis or --url)",
    )
    parser.add_argument(
        "--stop-on-target-miss",
        action="store_true",
        help="stop after a level where some sessions could not sign in",
    )
    args = parser.parse_args()
    if args.baseline and (args.redis or args.url):
        parser.error("--baseline starts make prod: not with --redis or --url")
    if args.rate <= 0 or args.duration <= 0 or args.duration > 3600:
        parser.error("--rate must be > 0 and --duration in (0, 3600]")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    if shutil.which("make") is None and not args.url:
        parser.error("make is needed to start the app (or give --url)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
