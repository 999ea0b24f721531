"""Our cookies as the server reads them, and the event websocket's handshake.

`read_cookie` is the one parser of our cookies (RFC 6265 section 5.4 as browsers
send it, and nothing looser): a value is taken as sent and only in the form
`new_secret` makes. `handshake_scope` is all Reflex's handlers ever get of a
browser's cookies (docs/security.md 45): every client Cookie header is dropped for one
of the server's making, and the client token is tied to the session (docs/security.md
46).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

import pytest
from cryptography.fernet import Fernet
from starlette.types import Scope

from pingapp.oidc.cookies import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    HandshakeRefs,
    cookie_name,
    handshake_scope,
    new_secret,
    read_cookie,
)
from pingapp.oidc.session import Vault
from pingapp.oidc.store import DiskStore

#: Two values of the form `new_secret` makes (43 URL-safe characters).
S = "A" * 21 + "-" + "b" * 20 + "_"
T = new_secret()


def cookie(value: bytes | str) -> list[tuple[bytes, bytes]]:
    """Request headers with one Cookie header."""
    return [(b"cookie", value.encode("latin-1") if isinstance(value, str) else value)]


def session_of(headers: list[tuple[bytes, bytes]], *, secure: bool = False) -> str:
    return read_cookie(headers, SESSION_COOKIE, secure=secure)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=60)


def websocket(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> Scope:
    """The event websocket's handshake scope, as the ASGI server hands it over."""
    return {
        "type": "websocket",
        "path": "/_reflex/_event",
        "headers": [(b"host", b"localhost:8000"), *headers, (b"origin", b"http://localhost:3000")],
        "query_string": query,
    }


def cookie_headers(scope: Scope) -> list[bytes]:
    return [value for name, value in scope["headers"] if name.lower() == b"cookie"]


# --- read_cookie ---------------------------------------------------------------------------


def test_new_secret_is_the_form_our_cookies_hold() -> None:
    assert len(S) == len(T) == 43
    assert session_of(cookie(f"{SESSION_COOKIE}={T}")) == T


@pytest.mark.parametrize(
    "header",
    [
        f"{SESSION_COOKIE}={S}",
        f"a=1; {SESSION_COOKIE}={S}; b=2",
        f"a=1;{SESSION_COOKIE}={S}",
        f"a=1;\t{SESSION_COOKIE}={S} ",
        f"{SESSION_COOKIE}={S}; {SESSION_COOKIE}={S}",  # the same value twice
    ],
)
def test_a_plain_value_is_read(header: str) -> None:
    assert session_of(cookie(header)) == S


def test_our_two_cookies_are_read_apart() -> None:
    headers = cookie(f"{LOGIN_COOKIE}={T}; {SESSION_COOKIE}={S}")
    assert session_of(headers) == S
    assert read_cookie(headers, LOGIN_COOKIE, secure=False) == T


def test_the_same_value_in_two_cookie_headers_is_fine() -> None:
    headers = [*cookie(f"{SESSION_COOKIE}={S}"), (b"Cookie", f"{SESSION_COOKIE}={S}".encode())]
    assert session_of(headers) == S


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f'{SESSION_COOKIE}="{S}"'.encode(), id="quoted"),
        pytest.param(f'{SESSION_COOKIE}="{S[:-1]}\\073"'.encode(), id="escaped \\073 quoted"),
        pytest.param(f"{SESSION_COOKIE}={S[:-4]}\\073".encode(), id="escaped \\073"),
        pytest.param(f"\u00a0{SESSION_COOKIE}={S}".encode(), id="nbsp before the name (utf-8)"),
        pytest.param(f"\u00a0{SESSION_COOKIE}={S}".encode("latin-1"), id="nbsp (latin-1)"),
        pytest.param(f"\u2000{SESSION_COOKIE}={S}".encode(), id="en quad before the name"),
        pytest.param(f"a=1;\u2000{SESSION_COOKIE}={S}".encode(), id="en quad after a pair"),
        pytest.param(f"{SESSION_COOKIE}\u00a0={S}".encode(), id="nbsp after the name"),
        pytest.param(f"{SESSION_COOKIE} ={S}".encode(), id="space after the name"),
        pytest.param(f"{SESSION_COOKIE.upper()}={S}".encode(), id="other case"),
        pytest.param(f"{SESSION_COOKIE}={S[:-1]}".encode(), id="too short"),
        pytest.param(f"{SESSION_COOKIE}={S}A".encode(), id="too long"),
        pytest.param(f"{SESSION_COOKIE}={S[:-1]}+".encode(), id="plus"),
        pytest.param(f"{SESSION_COOKIE}={S[:-1]}=".encode(), id="padding"),
        pytest.param(f"{SESSION_COOKIE}={S[:-1]}.".encode(), id="dot"),
        pytest.param(f"{SESSION_COOKIE}={'ab' * 32}".encode(), id="a 64-hex reference"),
        pytest.param(f"{SESSION_COOKIE}={S[:-1]}\u00e9".encode(), id="non-ascii"),
        pytest.param(f"{SESSION_COOKIE}=".encode(), id="empty"),
        pytest.param(SESSION_COOKIE.encode(), id="name only"),
        pytest.param(f"{SESSION_COOKIE}={S}; {SESSION_COOKIE}={T}".encode(), id="two values"),
    ],
)
def test_anything_but_a_plain_value_names_no_session(header: bytes) -> None:
    assert session_of(cookie(header)) == ""


def test_a_sibling_hosts_domain_cookie_beside_ours_names_no_session() -> None:
    """Two values under our name (one set with `Domain=` by a sibling host, one
    ours), in one header or in two: neither is taken, so nobody can fix a browser
    into a session of their choosing."""
    assert session_of(cookie(f"{SESSION_COOKIE}={T}; {SESSION_COOKIE}={S}")) == ""
    two_headers = [*cookie(f"{SESSION_COOKIE}={T}"), *cookie(f"{SESSION_COOKIE}={S}")]
    assert session_of(two_headers) == ""


def test_other_headers_are_not_read() -> None:
    headers = [(b"x-cookie", f"{SESSION_COOKIE}={S}".encode())]
    assert session_of(headers) == ""
    assert session_of([(b"COOKIE", f"{SESSION_COOKIE}={S}".encode())]) == S


def test_the_host_prefixed_name_only_over_https() -> None:
    host = cookie(f"__Host-{SESSION_COOKIE}={S}")
    plain = cookie(f"{SESSION_COOKIE}={S}")
    assert cookie_name(SESSION_COOKIE, secure=True) == f"__Host-{SESSION_COOKIE}"
    assert cookie_name(SESSION_COOKIE, secure=False) == SESSION_COOKIE
    assert session_of(host, secure=True) == S
    assert session_of(plain, secure=True) == ""  # any host of the site may set this one
    assert session_of(plain, secure=False) == S
    assert session_of(host, secure=False) == ""
    both = cookie(f"{SESSION_COOKIE}={T}; __Host-{SESSION_COOKIE}={S}")
    assert session_of(both, secure=True) == S
    assert session_of(both, secure=False) == T


# --- HandshakeRefs -------------------------------------------------------------------------


def test_handshake_refs_read_back_their_header() -> None:
    refs = HandshakeRefs(session="1" * 64, login="f" * 64)
    assert HandshakeRefs.from_header(refs.header().decode()) == refs
    assert HandshakeRefs.from_header(HandshakeRefs().header().decode()) == HandshakeRefs()
    assert HandshakeRefs.from_header("") == HandshakeRefs()


@pytest.mark.parametrize("value", [S, "F" * 64, "0" * 63, "0" * 65, "g" * 64, '"' + "0" * 62 + '"'])
def test_handshake_refs_take_only_a_reference(value: str) -> None:
    header = f"pingapp-session-ref={value}; pingapp-login-ref={value}"
    assert HandshakeRefs.from_header(header) == HandshakeRefs()


# --- handshake_scope -----------------------------------------------------------------------


def test_every_client_cookie_header_gives_way_to_one_of_the_servers(vault: Vault) -> None:
    headers = [
        (b"cookie", f"a=1; {SESSION_COOKIE}={S}".encode()),
        (b"Cookie", f"{LOGIN_COOKIE}={T}".encode()),
        (b"COOKIE", b"theme=dark"),
        (b"cOoKiE", b"pingapp-session-ref=" + b"0" * 64),
    ]
    scope = websocket(headers)
    rewritten, refs = handshake_scope(scope, secure=False, reference=vault.reference)
    assert refs == HandshakeRefs(session=vault.reference(S), login=vault.reference(T))
    assert cookie_headers(rewritten) == [refs.header()]
    # Nothing the client sent in a Cookie header is left anywhere.
    for _, value in rewritten["headers"]:
        for sent in (S.encode(), T.encode(), b"theme", b"0" * 64):
            assert sent not in value
    # Every other header stays, in its place.
    assert [h for h in rewritten["headers"] if h[0] != b"cookie"] == [
        (b"host", b"localhost:8000"),
        (b"origin", b"http://localhost:3000"),
    ]
    assert (rewritten["type"], rewritten["path"]) == ("websocket", "/_reflex/_event")
    assert scope == websocket(headers)  # the given scope is left as it was


def test_without_our_cookies_the_servers_header_holds_no_reference(vault: Vault) -> None:
    for headers in ([], cookie("a=1"), cookie(f"{SESSION_COOKIE}=made-up")):
        rewritten, refs = handshake_scope(
            websocket(headers), secure=False, reference=vault.reference
        )
        assert refs == HandshakeRefs()
        assert cookie_headers(rewritten) == [HandshakeRefs().header()]


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("pingapp-session-ref={ref}; pingapp-login-ref={ref}", id="alone"),
        pytest.param(f"pingapp-session-ref={{ref}}; {SESSION_COOKIE}={T}", id="before ours"),
        pytest.param(f"{SESSION_COOKIE}={T}; pingapp-session-ref={{ref}}", id="after ours"),
        pytest.param(f"{SESSION_COOKIE}={{ref}}", id="as our cookie's value"),
    ],
)
def test_a_client_spelled_reference_is_not_what_handlers_see(vault: Vault, sent: str) -> None:
    """SECURITY 45: a reference read from the store (a victim's session) sent in a
    client's own Cookie header, as the server's pair or as our cookie, never comes out."""
    victim = vault.reference(S)
    rewritten, refs = handshake_scope(
        websocket(cookie(sent.format(ref=victim))), secure=False, reference=vault.reference
    )
    [header] = cookie_headers(rewritten)
    seen = HandshakeRefs.from_header(header.decode())
    assert seen == refs
    assert victim not in header.decode()
    assert seen.session != victim
    assert seen.login != victim
    assert seen.session in ("", vault.reference(T))


def test_the_secure_handshake_reads_only_host_prefixed_cookies(vault: Vault) -> None:
    headers = cookie(f"{SESSION_COOKIE}={T}; __Host-{SESSION_COOKIE}={S}")
    _, refs = handshake_scope(websocket(headers), secure=True, reference=vault.reference)
    assert refs.session == vault.reference(S)
    _, refs = handshake_scope(websocket(headers), secure=False, reference=vault.reference)
    assert refs.session == vault.reference(T)


def token_after(vault: Vault, headers: list[tuple[bytes, bytes]], token: str = "client-1") -> str:
    query = f"EIO=4&token={token}&transport=websocket".encode()
    rewritten, _ = handshake_scope(
        websocket(headers, query), secure=False, reference=vault.reference
    )
    [value] = parse_qs(rewritten["query_string"].decode())["token"]
    return value


def test_the_client_token_becomes_a_keyed_derivation_of_token_and_session(
    vault: Vault, tmp_path: Path
) -> None:
    """SECURITY 46: the tab state a connection reaches belongs to the session its
    cookie names: the client token alone, or with another session's cookie, finds
    another state."""
    mine = cookie(f"{SESSION_COOKIE}={S}")
    token = token_after(vault, mine)
    assert token == vault.reference(f"tab\x00client-1\x00{vault.reference(S)}")
    assert token != "client-1"
    assert token_after(vault, mine) == token  # a reconnect finds its state again
    assert token_after(vault, []) != token  # without the cookie
    assert token_after(vault, cookie(f"{SESSION_COOKIE}={T}")) != token  # another session
    assert token_after(vault, []) != token_after(vault, [], token="client-2")
    assert token_after(vault, []) == vault.reference("tab\x00client-1\x00")
    other = Vault(DiskStore(tmp_path / "other"), Fernet.generate_key(), max_age=60)
    assert token_after(other, mine) != token  # keyed: no one else can compute it


def test_other_query_parameters_are_kept(vault: Vault) -> None:
    query = b"EIO=4&token=client-1&transport=websocket&empty=&x=a%20b"
    rewritten, _ = handshake_scope(
        websocket(cookie(f"{SESSION_COOKIE}={S}"), query), secure=False, reference=vault.reference
    )
    pairs = parse_qsl(rewritten["query_string"].decode(), keep_blank_values=True)
    assert [key for key, _ in pairs] == ["EIO", "token", "transport", "empty", "x"]
    assert dict(pairs) | {"token": ""} == {
        "EIO": "4",
        "token": "",
        "transport": "websocket",
        "empty": "",
        "x": "a b",
    }
    untouched, _ = handshake_scope(
        websocket([], b"EIO=4&transport=websocket"), secure=False, reference=vault.reference
    )
    assert untouched["query_string"] == b"EIO=4&transport=websocket"
