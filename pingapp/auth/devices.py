"""Where a user is signed in: what a session records of its browser, and ending
another of the user's sessions (docs/sessions.md).

Plain code, testable without Reflex:

- `describe_agent`: browser and system of a User-Agent, parsed by ua-parser (the
  uap-core patterns), never by a regex of ours.
- `coarse_address`: what is kept of the client address at sign-in: the IPv4 /24 or
  the IPv6 /48 network, never the address itself.
- `same_owner` and `end_owned_session`: a session is ended only for a caller whose own
  live session has the same issuer and `sub`, checked when it is ended.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import ua_parser

from pingapp import telemetry
from pingapp.oidc.session import ServerSession, Vault

logger = logging.getLogger(__name__)

#: The most of a User-Agent header a session keeps.
USER_AGENT_LIMIT = 512
#: The prefix lengths an address is cut to before it is stored.
IPV4_PREFIX, IPV6_PREFIX = 24, 48


def clean_agent(header: str) -> str:
    """The User-Agent as stored: printable ASCII only, at most USER_AGENT_LIMIT."""
    return "".join(ch for ch in header if " " <= ch <= "~")[:USER_AGENT_LIMIT]


def _version(*parts: str | None) -> str:
    return ".".join(part for part in parts if part)


@dataclasses.dataclass(frozen=True)
class Agent:
    """A User-Agent as the sessions list shows it."""

    browser: str
    system: str

    @property
    def text(self) -> str:
        return f"{self.browser} on {self.system}"


def describe_agent(user_agent: str) -> Agent:
    """Browser (family and major version) and system (family and version) of a
    User-Agent; "Unknown browser" / "unknown system" for what ua-parser cannot
    name. The library's parser caches its answers."""
    result = ua_parser.parse(user_agent) if user_agent else None
    browser, system = "Unknown browser", "unknown system"
    if result is not None and result.user_agent and result.user_agent.family != "Other":
        agent = result.user_agent
        browser = f"{agent.family} {_version(agent.major)}".strip()
    if result is not None and result.os and result.os.family != "Other":
        os = result.os
        system = f"{os.family} {_version(os.major, os.minor)}".strip()
    return Agent(browser, system)


def coarse_address(counted: str) -> str:
    """The network a client address belongs to, as stored: an IPv4 address as its
    /24, an IPv6 address or network (`clientaddr.client_address` counts IPv6 by
    its /64) as its /48. '' for anything that is not an IP address."""
    try:
        network = ipaddress.ip_network(counted.strip(), strict=False)
    except ValueError:
        return ""
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        network = ipaddress.ip_network(network.network_address.ipv4_mapped)
    prefix = IPV4_PREFIX if network.version == 4 else IPV6_PREFIX
    if network.prefixlen < prefix:
        return ""  # a network wider than what is kept names no client
    return str(network.supernet(new_prefix=prefix))


def when(epoch: float) -> tuple[str, str]:
    """An epoch time as ISO 8601 (for `<time datetime>`) and in words ('' for 0)."""
    if not epoch:
        return "", ""
    moment = datetime.fromtimestamp(int(epoch), UTC)
    return moment.isoformat(), moment.strftime("%Y-%m-%d %H:%M UTC")


def owner(session: ServerSession) -> tuple[str, str] | None:
    """Who a session belongs to: (issuer, sub), or None without both."""
    issuer, sub = session.claims.get("iss"), session.claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(sub, str) or not issuer or not sub:
        return None
    return issuer, sub


def same_owner(a: ServerSession, b: ServerSession) -> bool:
    """Whether two sessions are the same user's at the same issuer."""
    first, second = owner(a), owner(b)
    return (
        first is not None
        and second is not None
        and hmac.compare_digest(first[0].encode(), second[0].encode())
        and hmac.compare_digest(first[1].encode(), second[1].encode())
    )


async def sessions_of_owner(vault: Vault, caller: str) -> list[tuple[str, ServerSession]]:
    """The live sessions of the user whose session is `caller` (the caller's
    among them), newest sign-in first; [] when `caller` is no live session."""
    mine = await vault.load(caller)
    who = owner(mine) if mine else None
    if mine is None or who is None:
        return []
    found = []
    for session_hash in await vault.sessions_of(who[0], sid=None, sub=who[1]):
        session = await vault.load(session_hash)
        if session is not None and same_owner(mine, session):
            found.append((session_hash, session))
    return sorted(found, key=lambda pair: pair[1].created_at, reverse=True)


Revoke = Callable[[str], Awaitable[object]]
Notify = Callable[[list[str], str], Awaitable[None]]


async def end_owned_session(
    vault: Vault,
    caller: str,
    target: str,
    *,
    revoke: Revoke,
    notify: Notify,
) -> bool:
    """End the session `target` for the caller whose session is `caller`, only when
    both are live, different and the same user's (issuer and `sub`), checked now.
    The session leaves the store, its refresh token is revoked at the provider, and
    its open tabs show the signed-out page (`notify`, on whichever backend holds
    them). Whether it was ended."""
    if not caller or not target or hmac.compare_digest(caller, target):
        return False
    mine, theirs = await vault.load(caller), await vault.load(target)
    if mine is None or theirs is None or not same_owner(mine, theirs):
        logger.warning("a request to end a session that is not the caller's; refused")
        return False
    ended = await vault.end(target)
    if ended is None:
        return False  # ended meanwhile
    telemetry.session_closed(
        "session_ended_elsewhere", user=str(ended.claims.get("sub", "")), session=target
    )
    await notify(ended.tabs, "")
    if ended.refresh_token:
        try:
            await revoke(ended.refresh_token)
        except Exception:  # the session is gone here; the provider may keep its grant
            logger.warning("could not revoke an ended session's refresh token", exc_info=True)
    return True
