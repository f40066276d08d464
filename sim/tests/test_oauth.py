"""OAuth authorization-code flow: the authorize page, the form, the code exchange, sessions."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from phalanx_sim import SimSettings, Simulator, running_simulator
from phalanx_sim.oauth import pkce_challenge
from phalanx_sim.testing import SimSocket

REDIRECT = "https://app.example.com/oauth/callback"


async def _setup(http: httpx.AsyncClient) -> None:
    made = await http.post(
        "/admin/oauth/clients",
        json={"client_id": "phalanx", "client_secret": "s3cret", "redirect_uris": [REDIRECT]},
    )
    assert made.status_code == 201
    assert made.json() == {"client_id": "phalanx"}
    user = await http.post("/admin/users", json={"name": "alice", "password": "pw", "accounts": 2})
    assert user.status_code == 200


def _hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


async def _authorize(
    http: httpx.AsyncClient,
    *,
    password: str = "pw",  # noqa: S107
    state: str = "xyz",
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": "phalanx",
        "redirect_uri": REDIRECT,
        "state": state,
        **(extra or {}),
    }
    page = await http.get("/oauth", params=params)
    assert page.status_code == 200
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    assert 'id="authorize"' in page.text
    form = {**_hidden_fields(page.text), "username": "alice", "password": password}
    return await http.post("/oauth", data=form)


def _code_of(response: httpx.Response, state: str = "xyz") -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def _exchange_body(code_: str, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code_,
        "redirect_uri": REDIRECT,
        "client_id": "phalanx",
        "client_secret": "s3cret",
        **overrides,
    }


async def test_full_flow_form_encoded_exchange_without_v1(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    await _setup(http)
    code = _code_of(await _authorize(http))

    token = await http.post("/auth/oauthtoken", data=_exchange_body(code))

    assert token.status_code == 200
    body = token.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert 79 * 60 <= body["expires_in"] <= 80 * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await http.get("/v1/auth/me", headers=headers)
    assert me.json()["name"] == "alice"
    accounts = await http.get("/v1/account/list", headers=headers)
    assert len(accounts.json()) == 2
    renewed = await http.get("/v1/auth/renewaccesstoken", headers=headers)
    assert renewed.json()["accessToken"] != body["access_token"]
    sock = await SimSocket.connect(sim.ws_url)
    try:
        assert (await sock.authorize(body["access_token"]))["s"] == 200
    finally:
        await sock.close()


async def test_json_exchange_on_the_v1_path(http: httpx.AsyncClient) -> None:
    await _setup(http)
    code = _code_of(await _authorize(http))

    token = await http.post("/v1/auth/oauthtoken", json=_exchange_body(code))

    assert token.status_code == 200
    assert token.json()["access_token"]


async def test_codes_are_single_use(http: httpx.AsyncClient) -> None:
    await _setup(http)
    code = _code_of(await _authorize(http))

    first = await http.post("/auth/oauthtoken", data=_exchange_body(code))
    second = await http.post("/auth/oauthtoken", data=_exchange_body(code))

    assert "access_token" in first.json()
    assert second.status_code == 200
    assert second.json()["error"] == "invalid_grant"
    assert second.json()["error_description"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"redirect_uri": "https://evil.example.com/cb"}, "invalid_grant"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"code": ""}, "invalid_request"),
    ],
)
async def test_exchange_errors(
    http: httpx.AsyncClient, overrides: dict[str, str], error: str
) -> None:
    await _setup(http)
    code = _code_of(await _authorize(http))

    answer = await http.post("/auth/oauthtoken", data=_exchange_body(code, **overrides))

    assert answer.status_code == 200
    assert answer.json()["error"] == error
    assert "access_token" not in answer.json()


async def test_wrong_credentials_rerender_the_form(http: httpx.AsyncClient) -> None:
    await _setup(http)

    answer = await _authorize(http, password="nope")

    assert answer.status_code == 200
    assert 'id="error"' in answer.text
    assert "location" not in answer.headers
    assert _hidden_fields(answer.text)["client_id"] == "phalanx"


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown", "redirect_uri": REDIRECT},
        {"client_id": "phalanx", "redirect_uri": REDIRECT + "/other"},
        {"client_id": "phalanx", "redirect_uri": "https://app.example.com/oauth"},
    ],
)
async def test_unknown_client_or_redirect_is_a_400_page_never_a_redirect(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await _setup(http)
    query = {"response_type": "code", "state": "s", **params}

    page = await http.get("/oauth", params=query)
    posted = await http.post("/oauth", data={**query, "username": "alice", "password": "pw"})

    assert page.status_code == 400
    assert posted.status_code == 400
    assert "location" not in posted.headers


async def test_pkce_s256(http: httpx.AsyncClient) -> None:
    await _setup(http)
    verifier = "a-long-random-verifier-string-0123456789-abcdefghijkl"
    extra = {"code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
    bad = _code_of(await _authorize(http, extra=extra))
    good = _code_of(await _authorize(http, extra=extra))

    refused = await http.post("/auth/oauthtoken", data=_exchange_body(bad, code_verifier="x"))
    accepted = await http.post(
        "/auth/oauthtoken", data=_exchange_body(good, code_verifier=verifier)
    )

    assert refused.json()["error"] == "invalid_grant"
    assert "access_token" in accepted.json()


async def test_expired_code_and_rfc_error_status() -> None:
    settings = SimSettings(sim_oauth_code_ttl_s=0.0, sim_oauth_error_status=400)
    async with running_simulator(settings) as sim, httpx.AsyncClient(base_url=sim.url) as http:
        await _setup(http)
        code = _code_of(await _authorize(http))

        answer = await http.post("/auth/oauthtoken", data=_exchange_body(code))

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_oauth_token_counts_toward_the_two_session_rule(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    await _setup(http)
    tokens: list[str] = []
    for _ in range(3):
        code = _code_of(await _authorize(http))
        answer: dict[str, Any] = (
            await http.post("/auth/oauthtoken", data=_exchange_body(code))
        ).json()
        tokens.append(answer["access_token"])

    statuses = [
        (await http.get("/v1/auth/me", headers={"Authorization": f"Bearer {t}"})).status_code
        for t in tokens
    ]

    assert statuses == [401, 200, 200]
