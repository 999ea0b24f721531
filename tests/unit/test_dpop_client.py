"""The app as a DPoP client (RFC 9449): AUTH_DPOP, proofs on the provider's token
and userinfo endpoints with the `use_dpop_nonce` retry, and `TokenAuth` attaching a
bound token and a fresh proof only to allow-listed origins, hop by hop.

Every server here is a MockTransport handler that checks proofs with
`pingapp.dpop.verify_proof`; no host named here is ever contacted.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt
import pytest
from cryptography.fernet import Fernet

from pingapp.dpop import DPoPError, DPoPKey, NonceMemory, verify_proof
from pingapp.oidc.client import OIDCClient
from pingapp.oidc.dpop import bound_jkt, login_key
from pingapp.oidc.errors import LoginError
from pingapp.oidc.login import new_pending_login
from pingapp.oidc.refresh import Outcome, current_token
from pingapp.oidc.session import LoginRecord, ServerSession, Vault
from pingapp.oidc.store import DiskStore
from pingapp.outbound.http import Credential, TokenAuth, make_client
from pingapp.settings import Settings
from pingapp.web.challenges import challenge_params

ISSUER = "https://idp.example.test"
TOKEN_URL = ISSUER + "/token"
USERINFO_URL = ISSUER + "/userinfo"
API = "https://api.example.test"
ELSEWHERE = "https://elsewhere.example.test"
NONCE = "server-nonce-1"


# -- AUTH_DPOP: whether a sign-in gets a key ------------------------------------------


def test_auto_uses_es256_when_the_provider_lists_it() -> None:
    key = DPoPKey.from_json(
        login_key("auto", {"dpop_signing_alg_values_supported": ["RS256", "ES256"]})
    )
    assert key.alg == "ES256"
    # A new key each time: a new sign-in never reuses another's key.
    again = login_key("auto", {"dpop_signing_alg_values_supported": ["ES256"]})
    assert DPoPKey.from_json(again).jkt != key.jkt


def test_a_key_for_an_algorithm_from_the_providers_list() -> None:
    key = DPoPKey.from_json(login_key("required", {"dpop_signing_alg_values_supported": ["PS256"]}))
    assert key.alg == "PS256"


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"dpop_signing_alg_values_supported": []},
        {"dpop_signing_alg_values_supported": ["HS256"]},
    ],
)
def test_auto_signs_in_with_bearer_tokens_when_the_provider_has_no_dpop(metadata: dict) -> None:
    assert login_key("auto", metadata) == ""


def test_required_refuses_a_provider_without_dpop_clearly() -> None:
    with pytest.raises(LoginError) as refused:
        login_key("required", {"dpop_signing_alg_values_supported": ["HS256"]})
    assert refused.value.code == "no_dpop"
    assert "AUTH_DPOP" in refused.value.detail


def test_off_never_makes_a_key() -> None:
    assert login_key("off", {"dpop_signing_alg_values_supported": ["ES256"]}) == ""


def test_the_setting_accepts_the_three_modes_only() -> None:
    assert Settings().auth_dpop == "auto"
    assert Settings(auth_dpop="required").auth_dpop == "required"
    with pytest.raises(ValueError, match="auth_dpop"):
        Settings(auth_dpop="yes")  # type: ignore[arg-type]


def test_a_token_response_is_bound_only_when_it_says_dpop() -> None:
    key = DPoPKey.generate()
    assert bound_jkt({"token_type": "DPoP"}, key.to_json()) == key.jkt
    assert bound_jkt({"token_type": "dpop"}, key.to_json()) == key.jkt
    assert bound_jkt({"token_type": "Bearer"}, key.to_json()) == ""
    assert bound_jkt({"token_type": "DPoP"}, "") == ""


# -- the provider: token requests and userinfo ----------------------------------------


@dataclasses.dataclass
class Provider:
    """The token and userinfo endpoints of a provider that checks DPoP proofs."""

    token_type: str = "DPoP"
    #: The nonce it requires in proofs (None: none), and how often it asks for one.
    nonce: str | None = None
    always_ask_nonce: bool = False
    advertise: bool = True
    proofs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    requests: list[httpx2.Request] = dataclasses.field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": ISSUER + "/authorize",
            "token_endpoint": TOKEN_URL,
            "userinfo_endpoint": USERINFO_URL,
            "jwks_uri": ISSUER + "/jwks",
        }
        if self.advertise:
            document["dpop_signing_alg_values_supported"] = ["ES256", "RS256"]
        return document

    def _proof(self, request: httpx2.Request, access_token: str | None = None) -> dict[str, Any]:
        verified = verify_proof(
            request.headers["DPoP"],
            method=request.method,
            url=str(request.url),
            access_token=access_token,
            nonce=self.nonce,
        )
        self.proofs.append(verified.claims | {"jkt": verified.jkt})
        return verified.claims

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(200, json=self.metadata())
        nonce_header = {"DPoP-Nonce": self.nonce} if self.nonce else {}
        if request.url.path == "/token":
            if "DPoP" not in request.headers:
                return httpx2.Response(200, json=self.tokens("Bearer"))
            try:
                if self.always_ask_nonce:
                    raise DPoPError("a nonce", "use_dpop_nonce")
                self._proof(request)
            except DPoPError as error:
                body = {"error": error.error, "error_description": error.description}
                return httpx2.Response(400, json=body, headers=nonce_header)
            return httpx2.Response(200, json=self.tokens(self.token_type), headers=nonce_header)
        if request.url.path == "/userinfo":
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme == "DPoP":
                try:
                    self._proof(request, access_token=token)
                except DPoPError as error:
                    challenge = f'DPoP error="{error.error}"'
                    headers = {"WWW-Authenticate": challenge, **nonce_header}
                    return httpx2.Response(401, headers=headers)
            return httpx2.Response(200, json={"sub": "user-1", "scheme": scheme})
        return httpx2.Response(404)

    def tokens(self, token_type: str) -> dict[str, Any]:
        return {"access_token": "at-1", "refresh_token": "rt-1", "token_type": token_type}

    def token_posts(self) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path == "/token"]


def oidc_client(provider: Provider, **settings: Any) -> OIDCClient:
    http = make_client(transport=httpx2.MockTransport(provider))
    options = {"auth_issuer": ISSUER, "auth_client_id": "pingapp", **settings}
    return OIDCClient(http, Settings(**options), ISSUER)


def pending_login() -> Any:
    return new_pending_login(redirect_uri="http://localhost:3000/callback", return_to="/")


async def test_the_code_exchange_carries_a_proof_for_the_token_endpoint() -> None:
    provider, key = Provider(), DPoPKey.generate()
    client = oidc_client(provider)
    tokens = await client.exchange_code(pending_login(), "code-1", dpop_key=key.to_json())
    assert tokens["token_type"] == "DPoP"
    assert bound_jkt(tokens, key.to_json()) == key.jkt
    [post] = provider.token_posts()
    assert parse_qs(post.content.decode())["grant_type"] == ["authorization_code"]
    [proof] = provider.proofs
    assert proof["htm"] == "POST"
    assert proof["htu"] == TOKEN_URL
    assert proof["jkt"] == key.jkt
    assert "ath" not in proof  # no access token goes with a token request


async def test_without_a_key_the_token_request_has_no_proof() -> None:
    provider = Provider()
    await oidc_client(provider).exchange_code(pending_login(), "code-1")
    assert "DPoP" not in provider.token_posts()[0].headers


async def test_the_providers_nonce_is_used_once_asked_and_remembered() -> None:
    provider, key = Provider(nonce=NONCE), DPoPKey.generate()
    client = oidc_client(provider)
    await client.exchange_code(pending_login(), "code-1", dpop_key=key.to_json())
    first, _retry = provider.token_posts()  # use_dpop_nonce, then once more with it
    assert "nonce" not in jwt.decode(first.headers["DPoP"], options={"verify_signature": False})
    assert provider.proofs[-1]["nonce"] == NONCE
    assert client.dpop_nonces.get(TOKEN_URL) == NONCE
    # The refresh sends the remembered nonce at once: one request.
    await client.refresh("rt-1", dpop_key=key.to_json())
    assert len(provider.token_posts()) == 3
    assert provider.proofs[-1]["nonce"] == NONCE
    assert len({proof["jti"] for proof in provider.proofs}) == len(provider.proofs)


async def test_use_dpop_nonce_is_retried_once_only() -> None:
    provider, key = Provider(nonce=NONCE, always_ask_nonce=True), DPoPKey.generate()
    with pytest.raises(LoginError) as refused:
        await oidc_client(provider).exchange_code(pending_login(), "c", dpop_key=key.to_json())
    assert refused.value.code == "use_dpop_nonce"
    assert len(provider.token_posts()) == 2


async def test_a_bearer_answer_to_a_proof_is_used_as_bearer_with_auto() -> None:
    provider, key = Provider(token_type="Bearer"), DPoPKey.generate()
    tokens = await oidc_client(provider).exchange_code(pending_login(), "c", dpop_key=key.to_json())
    assert bound_jkt(tokens, key.to_json()) == ""


async def test_a_bearer_answer_to_a_proof_fails_clearly_with_required() -> None:
    provider, key = Provider(token_type="Bearer"), DPoPKey.generate()
    client = oidc_client(provider, auth_dpop="required")
    with pytest.raises(LoginError) as refused:
        await client.exchange_code(pending_login(), "c", dpop_key=key.to_json())
    assert refused.value.code == "dpop_not_bound"
    assert "AUTH_DPOP=required" in refused.value.detail


async def test_a_login_key_follows_the_setting_and_the_metadata() -> None:
    assert await oidc_client(Provider(), auth_dpop="off").new_dpop_key() == ""
    assert DPoPKey.from_json(await oidc_client(Provider()).new_dpop_key()).alg == "ES256"
    assert await oidc_client(Provider(advertise=False)).new_dpop_key() == ""
    with pytest.raises(LoginError):
        await oidc_client(Provider(advertise=False), auth_dpop="required").new_dpop_key()


async def test_userinfo_with_a_bound_token_sends_dpop_and_a_proof_with_ath() -> None:
    provider, key = Provider(nonce=NONCE), DPoPKey.generate()
    profile = await oidc_client(provider).userinfo("at-1", dpop_key=key.to_json())
    assert profile == {"sub": "user-1", "scheme": "DPoP"}
    proof = provider.proofs[-1]
    assert (proof["htm"], proof["htu"], proof["nonce"]) == ("GET", USERINFO_URL, NONCE)
    assert proof["jkt"] == key.jkt
    assert "ath" in proof  # checked against the token by verify_proof


async def test_userinfo_with_a_bearer_token_stays_bearer() -> None:
    provider = Provider()
    assert (await oidc_client(provider).userinfo("at-1"))["scheme"] == "Bearer"
    assert "DPoP" not in provider.requests[-1].headers


# -- refresh keeps the binding ------------------------------------------------------


class Refresher:
    def __init__(self, token_type: str) -> None:
        self.token_type = token_type
        self.keys: list[str] = []

    async def refresh(self, refresh_token: str, *, dpop_key: str = "") -> dict[str, Any]:
        self.keys.append(dpop_key)
        return {"access_token": "at-2", "refresh_token": "rt-2", "token_type": self.token_type}


@pytest.mark.parametrize(("token_type", "bound"), [("DPoP", True), ("Bearer", False)])
async def test_a_refresh_uses_the_sessions_key_and_records_the_binding(
    tmp_path: Path, token_type: str, bound: bool
) -> None:
    vault = Vault(DiskStore(tmp_path), Fernet.generate_key(), max_age=3600)
    key = DPoPKey.generate()
    session = ServerSession(
        access_token="at-1", refresh_token="rt-1", dpop_key=key.to_json(), dpop_jkt=key.jkt
    )
    session_hash = "h" * 43
    session.created_at = time.time()
    await vault.save(session_hash, session)
    fresh = await current_token(vault, Refresher("DPoP"), session_hash)
    assert fresh.credential is not None
    assert fresh.credential.dpop_key is not None and fresh.credential.dpop_key.jkt == key.jkt
    refresher = Refresher(token_type)
    outcome = await current_token(vault, refresher, session_hash, rejected="at-1")
    assert outcome.kind is Outcome.REFRESHED
    assert refresher.keys == [key.to_json()]
    stored = await vault.load(session_hash)
    assert stored is not None and stored.dpop_jkt == (key.jkt if bound else "")
    assert outcome.credential is not None
    assert (outcome.credential.dpop_key is not None) is bound


# -- TokenAuth: where a bound token and its proof go ----------------------------------


@dataclasses.dataclass
class Upstream:
    """Answers by URL (`answers`: URL -> list of (status, headers), the last repeats)
    and records each request's Authorization and DPoP headers."""

    answers: dict[str, list[tuple[int, dict[str, str]]]] = dataclasses.field(default_factory=dict)
    sent: list[httpx2.Request] = dataclasses.field(default_factory=list)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        # A copy: a retry resends the same request object with new headers.
        self.sent.append(
            httpx2.Request(request.method, request.url, headers=request.headers.copy())
        )
        queue = self.answers.get(str(request.url), [(200, {})])
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx2.Response(status, headers=headers)

    def headers(self) -> list[tuple[str, str | None, str | None]]:
        return [
            (str(r.url), r.headers.get("Authorization"), r.headers.get("DPoP")) for r in self.sent
        ]


KEY = DPoPKey.generate()


def provider_of(*credentials: Credential | None) -> tuple[Callable, list[str | None]]:
    """A token provider giving `credentials` in turn; records what it was asked."""
    asked: list[str | None] = []
    given = list(credentials)

    async def provide(rejected: str | None) -> Credential | None:
        asked.append(rejected)
        return given.pop(0) if len(given) > 1 else given[0]

    return provide, asked


async def send(
    upstream: Upstream,
    url: str,
    auth: httpx2.Auth,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    async with make_client(transport=httpx2.MockTransport(upstream)) as client:
        return await client.request(method, url, auth=auth, headers=headers)


def check(request: httpx2.Request, token: str, key: DPoPKey = KEY, nonce: str | None = None):
    """The request carries `DPoP <token>` and a valid proof for it (else raises)."""
    assert request.headers["Authorization"] == f"DPoP {token}"
    return verify_proof(
        request.headers["DPoP"],
        method=request.method,
        url=str(request.url),
        access_token=token,
        expected_jkt=key.jkt,
        nonce=nonce,
    ).claims


async def test_a_bound_token_goes_with_a_fresh_proof_to_an_allowed_origin() -> None:
    upstream = Upstream()
    provide, _ = provider_of(Credential("at-1", KEY))
    auth = TokenAuth(provide, [API])
    await send(upstream, f"{API}/private?x=1#frag", auth)
    await send(upstream, f"{API}/private?x=1", auth, method="POST")
    first, second = (check(request, "at-1") for request in upstream.sent)
    assert first["htu"] == second["htu"] == f"{API}/private"  # no query, no fragment
    assert (first["htm"], second["htm"]) == ("GET", "POST")
    assert first["jti"] != second["jti"]
    assert "nonce" not in first


async def test_an_unbound_token_stays_bearer_without_a_proof() -> None:
    upstream = Upstream()
    provide, _ = provider_of(Credential("at-1"))
    await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert upstream.headers() == [(f"{API}/private", "Bearer at-1", None)]


async def test_a_plain_string_token_is_still_bearer() -> None:
    upstream = Upstream()

    async def provide(rejected: str | None) -> str | None:
        return "at-1"

    await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert upstream.headers() == [(f"{API}/private", "Bearer at-1", None)]


async def test_nothing_goes_to_an_origin_off_the_allowlist() -> None:
    upstream = Upstream()
    provide, asked = provider_of(Credential("at-1", KEY))
    caller_headers = {"Authorization": "DPoP forged", "DPoP": "forged-proof"}
    await send(upstream, f"{ELSEWHERE}/private", TokenAuth(provide, [API]), headers=caller_headers)
    assert upstream.headers() == [(f"{ELSEWHERE}/private", None, None)]
    assert asked == []  # the session was not even asked for its token


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_off_the_allowlist_gets_neither_token_nor_proof(status: int) -> None:
    upstream = Upstream({f"{API}/private": [(status, {"Location": f"{ELSEWHERE}/steal"})]})
    provide, _ = provider_of(Credential("at-1", KEY))
    await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    first, hop = upstream.sent
    check(first, "at-1")
    assert str(hop.url) == f"{ELSEWHERE}/steal"
    assert "Authorization" not in hop.headers
    assert "DPoP" not in hop.headers


async def test_each_allowed_hop_gets_its_own_proof_for_its_url() -> None:
    upstream = Upstream(
        {
            f"{ELSEWHERE}/start": [(302, {"Location": f"{API}/a"})],
            f"{API}/a": [(307, {"Location": f"{API}/b?q=1"})],
        }
    )
    provide, _ = provider_of(Credential("at-1", KEY))
    await send(upstream, f"{ELSEWHERE}/start", TokenAuth(provide, [API]))
    start, a, b = upstream.sent
    assert "Authorization" not in start.headers and "DPoP" not in start.headers
    proof_a, proof_b = check(a, "at-1"), check(b, "at-1")
    assert (proof_a["htu"], proof_b["htu"]) == (f"{API}/a", f"{API}/b")
    assert proof_a["jti"] != proof_b["jti"]


NONCE_CHALLENGE = {
    "WWW-Authenticate": 'DPoP algs="ES256", error="use_dpop_nonce"',
    "DPoP-Nonce": NONCE,
}


async def test_use_dpop_nonce_is_retried_once_with_the_nonce_and_remembered() -> None:
    upstream = Upstream({f"{API}/private": [(401, NONCE_CHALLENGE), (200, {})]})
    nonces = NonceMemory()
    provide, asked = provider_of(Credential("at-1", KEY))
    auth = TokenAuth(provide, [API, ELSEWHERE], nonces=nonces)
    response = await send(upstream, f"{API}/private", auth)
    assert response.status_code == 200
    first, retry = upstream.sent
    assert "nonce" not in check(first, "at-1")
    assert check(retry, "at-1", nonce=NONCE)["nonce"] == NONCE
    assert asked == [None]  # the same token: no refresh
    # Later calls to that origin carry it at once; another origin never gets it.
    await send(upstream, f"{API}/other", TokenAuth(provide, [API, ELSEWHERE], nonces=nonces))
    assert check(upstream.sent[-1], "at-1")["nonce"] == NONCE
    await send(upstream, f"{ELSEWHERE}/x", TokenAuth(provide, [API, ELSEWHERE], nonces=nonces))
    assert "nonce" not in check(upstream.sent[-1], "at-1")


async def test_use_dpop_nonce_twice_is_returned_as_is() -> None:
    upstream = Upstream({f"{API}/private": [(401, NONCE_CHALLENGE)]})
    provide, _ = provider_of(Credential("at-1", KEY))
    response = await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert response.status_code == 401
    assert len(upstream.sent) == 2


async def test_a_nonce_asked_for_in_a_400_body_is_retried_once_with_it() -> None:
    """A server that asks as an authorization server does (400, JSON `use_dpop_nonce`):
    the body is read for it, and the request goes once more with the nonce."""
    sent: list[httpx2.Request] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        sent.append(httpx2.Request(request.method, request.url, headers=request.headers.copy()))
        if len(sent) == 1:
            # Streamed, as from the network: unread until someone reads it.
            body = httpx2.ByteStream(b'{"error": "use_dpop_nonce"}')
            return httpx2.Response(400, headers={"DPoP-Nonce": NONCE}, stream=body)
        return httpx2.Response(200, json={})

    provide, _ = provider_of(Credential("at-1", KEY))
    async with make_client(transport=httpx2.MockTransport(server)) as client:
        response = await client.get(f"{API}/private", auth=TokenAuth(provide, [API]))
    assert response.status_code == 200
    assert check(sent[1], "at-1", nonce=NONCE)["nonce"] == NONCE


async def test_userinfo_goes_through_the_token_attaching_auth() -> None:
    """A userinfo endpoint that redirects elsewhere: no profile from another place, and
    the token and proof go to the userinfo endpoint only."""

    class Redirecting(Provider):
        def __call__(self, request: httpx2.Request) -> httpx2.Response:
            if request.url.path == "/userinfo":
                self.requests.append(request)
                return httpx2.Response(302, headers={"Location": f"{ELSEWHERE}/me"})
            if request.url.host == httpx2.URL(ELSEWHERE).host:
                self.requests.append(request)
                return httpx2.Response(200, json={"sub": "someone-else"})
            return super().__call__(request)

    provider = Redirecting()
    assert await oidc_client(provider).userinfo("at-1", dpop_key=KEY.to_json()) == {}
    [at_userinfo] = [r for r in provider.requests if r.url.path in {"/userinfo", "/me"}]
    assert at_userinfo.headers["Authorization"] == "DPoP at-1" and "DPoP" in at_userinfo.headers


async def test_a_nonce_challenge_without_a_nonce_is_not_retried() -> None:
    challenge = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"'}
    upstream = Upstream({f"{API}/private": [(401, challenge)]})
    provide, _ = provider_of(Credential("at-1", KEY))
    await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert len(upstream.sent) == 1


async def test_invalid_token_still_renews_a_bound_token_once() -> None:
    invalid = {"WWW-Authenticate": 'DPoP algs="ES256", error="invalid_token"'}
    upstream = Upstream({f"{API}/private": [(401, invalid), (200, {})]})
    new_key = DPoPKey.generate()
    provide, asked = provider_of(Credential("at-1", KEY), Credential("at-2", new_key))
    response = await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert response.status_code == 200
    assert asked == [None, "at-1"]
    check(upstream.sent[0], "at-1")
    check(upstream.sent[1], "at-2", key=new_key)


async def test_a_renewed_token_may_come_back_as_bearer() -> None:
    invalid = {"WWW-Authenticate": 'DPoP error="invalid_token"'}
    upstream = Upstream({f"{API}/private": [(401, invalid), (200, {})]})
    provide, _ = provider_of(Credential("at-1", KEY), Credential("at-2"))
    await send(upstream, f"{API}/private", TokenAuth(provide, [API]))
    assert upstream.headers()[1] == (f"{API}/private", "Bearer at-2", None)


def test_the_dpop_challenge_is_read_among_others() -> None:
    response = httpx2.Response(
        401,
        headers=[
            ("WWW-Authenticate", 'Bearer realm="a, DPoP error=x", error="invalid_token"'),
            ("WWW-Authenticate", 'DPoP algs="ES256 PS256", error="use_dpop_nonce"'),
        ],
    )
    assert challenge_params(response, "dpop") == {"algs": "ES256 PS256", "error": "use_dpop_nonce"}
    assert challenge_params(response, "bearer")["realm"] == "a, DPoP error=x"


def stored_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


async def test_the_login_key_is_kept_encrypted_with_the_pending_login(tmp_path: Path) -> None:
    vault = Vault(DiskStore(tmp_path), Fernet.generate_key(), max_age=3600)
    key = DPoPKey.generate()
    await vault.put_login("handle-1", LoginRecord(login=pending_login(), dpop_key=key.to_json()))
    secret = str(key.private_jwk()["d"]).encode()
    assert secret not in stored_bytes(tmp_path)
    record = await vault.take_login("handle-1")
    assert record is not None and DPoPKey.from_json(record.dpop_key).jkt == key.jkt
