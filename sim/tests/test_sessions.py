"""Sessions: the 2-session rule, token expiry closing sockets, the per-login socket quota."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from phalanx_sim import SimSettings, running_simulator
from phalanx_sim.testing import ManualClock, SimSocket, login_body, oso_body
from phalanx_testing.waiting import eventually

Login = Callable[[str, str], Awaitable[dict[str, Any]]]


async def test_a_third_login_closes_the_oldest_session_and_its_sockets() -> None:
    async with (
        running_simulator() as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        sim.create_user("alice", "pw")

        async def login() -> str:
            answer = await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
            token: str = answer.json()["accessToken"]
            return token

        first = await login()
        renewed_first = (
            await http.get(
                "/v1/auth/renewaccesstoken", headers={"Authorization": f"Bearer {first}"}
            )
        ).json()["accessToken"]
        second = await login()  # renewal did not open a session: still 2
        sock = await SimSocket.connect(sim.ws_url)
        try:
            assert (await sock.authorize(renewed_first))["s"] == 200
            third = await login()

            await eventually(lambda: sock.closed, what="the oldest session's socket closed")
        finally:
            await sock.close()

        alive = [
            sim.venue.authenticate(t) is not None for t in (first, renewed_first, second, third)
        ]

        assert alive == [False, False, True, True]
        assert sock.close_frame is not None
        assert "Session closed" in sock.close_frame[1]
        me = await http.get("/v1/auth/me", headers={"Authorization": f"Bearer {first}"})
        assert me.status_code == 401
        assert me.json() == "Access is denied"


async def test_token_expiry_closes_its_sockets_unless_reauthorized() -> None:
    clock = ManualClock()
    async with (
        running_simulator(SimSettings(sim_token_lifetime_s=100.0), clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        stays = await SimSocket.connect(sim.ws_url)
        goes = await SimSocket.connect(sim.ws_url)
        try:
            await stays.authorize(token)
            await goes.authorize(token)
            clock.advance(90)
            renewed = (
                await http.get(
                    "/v1/auth/renewaccesstoken", headers={"Authorization": f"Bearer {token}"}
                )
            ).json()
            assert (await stays.authorize(renewed["accessToken"]))["s"] == 200
            clock.advance(11)  # the first token has expired, the renewed one has not

            sim.hub.housekeeping()  # what the housekeeping task does on its next tick

            await eventually(lambda: goes.closed, what="socket of the expired token closed")
            assert goes.close_frame == [1000, "Closed: access token expired"]
            assert not stays.closed
            assert (await stays.request("auth/me"))["s"] == 200
        finally:
            await stays.close()
            await goes.close()


async def test_socket_quota_closes_the_oldest_with_shutdown_and_revokes_its_token() -> None:
    settings = SimSettings(sim_max_sockets_per_user=2)
    async with (
        running_simulator(settings) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        tokens = [token]
        for _ in range(2):
            renewed = await http.get(
                "/v1/auth/renewaccesstoken", headers={"Authorization": f"Bearer {tokens[-1]}"}
            )
            tokens.append(renewed.json()["accessToken"])
        socks = [await SimSocket.connect(sim.ws_url) for _ in range(3)]
        try:
            for sock, tok in zip(socks, tokens, strict=True):
                assert (await sock.authorize(tok))["s"] == 200

            await eventually(lambda: socks[0].closed, what="the oldest socket closed")
            assert socks[0].events[-1] == {
                "e": "shutdown",
                "d": {
                    "reasonCode": "ConnectionQuotaReached",
                    "reason": "More than 2 connections: closing the oldest",
                },
            }
            revoked = await http.get(
                "/v1/auth/me", headers={"Authorization": f"Bearer {tokens[0]}"}
            )
            assert revoked.status_code == 401
            assert not socks[1].closed
            assert not socks[2].closed
            assert (await socks[2].request("auth/me"))["s"] == 200
        finally:
            for sock in socks:
                await sock.close()


async def test_an_order_on_a_socket_whose_token_just_expired_is_refused_and_not_placed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between expiry and the housekeeping that closes the socket, an order is refused (401)."""
    clock = ManualClock()
    async with (
        running_simulator(SimSettings(sim_token_lifetime_s=100.0), clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.url) as http,
    ):
        sim.set_price("MNQZ6", 21000)
        user = sim.create_user("alice", "pw")
        token = (
            await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
        ).json()["accessToken"]
        # the socket stays open past the expiry: the housekeeping tick has not come yet
        monkeypatch.setattr(sim.hub, "housekeeping", lambda now=None: None)
        sock = await SimSocket.connect(sim.ws_url)
        try:
            assert (await sock.authorize(token))["s"] == 200
            before = await sock.request("order/placeoso", oso_body(user.accounts[0]))
            clock.advance(100)
            after = await sock.request(
                "order/placeoso", oso_body(user.accounts[0], cl_ord_id="sig-2")
            )
        finally:
            await sock.close()

        assert before["s"] == 200
        assert after["s"] == 401
        assert after["d"] == "Access is denied"
        placed = {c.command.clOrdId for o in sim.state.orders.values() for c in o.commands}
        assert "sig-1" in placed
        assert "sig-2" not in placed
