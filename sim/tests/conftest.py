"""Fixtures: a running simulator, an HTTP client, and a helper that creates and logs in users."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from phalanx_sim import Simulator, running_simulator
from phalanx_sim.testing import login_body


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator with default settings on a free port."""
    async with running_simulator() as simulator:
        yield simulator


@pytest_asyncio.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client pointed at the simulator."""
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as client:
        yield client


@pytest.fixture
def login(http: httpx.AsyncClient) -> Callable[[str, str], Awaitable[dict[str, Any]]]:
    """POST /v1/auth/accesstokenrequest; asserts HTTP 200 and returns the JSON body."""

    async def _login(name: str, password: str) -> dict[str, Any]:
        response = await http.post("/v1/auth/accesstokenrequest", json=login_body(name, password))
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    return _login


@pytest.fixture
def make_user(
    http: httpx.AsyncClient, login: Callable[[str, str], Awaitable[dict[str, Any]]]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Create a user through the admin API and log in.

    Returns ``{"userId", "accounts": [{"id", "name"}], "token", "headers"}``.
    """

    async def _make(
        name: str,
        accounts: int | list[str] = 1,
        password: str = "pw",  # noqa: S107
    ) -> dict[str, Any]:
        created = await http.post(
            "/admin/users", json={"name": name, "password": password, "accounts": accounts}
        )
        assert created.status_code == 200, created.text
        token = await login(name, password)
        assert "accessToken" in token, token
        return {
            "userId": created.json()["userId"],
            "accounts": created.json()["accounts"],
            "token": token["accessToken"],
            "headers": {"Authorization": f"Bearer {token['accessToken']}"},
        }

    return _make
