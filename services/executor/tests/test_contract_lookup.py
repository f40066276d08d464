"""The shared contract lookup: one login's failed lookup never fails another login's intents
(ADR-0111). Real simulator and NATS; the failure is the simulator's fault injection."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_executor.venue_view import VenueView
from phalanx_sim import Simulator
from phalanx_tradovate import TradovateSocket
from phalanx_tradovate.errors import VenueError

pytestmark = pytest.mark.integration

SYMBOL = "MESZ6"


async def test_a_lookup_that_fails_for_one_login_is_made_again_with_the_other(
    nats_url: str,
) -> None:
    async with Simulator(port=0) as sim, httpx.AsyncClient() as http:
        sockets: dict[str, TradovateSocket] = {}
        users: dict[str, int] = {}
        for name in ("troubled", "fine"):
            users[name] = sim.create_user(name, "pw", accounts=1).userId
            body = (
                await http.post(
                    sim.rest_url + "/auth/accesstokenrequest",
                    json={"name": name, "password": "pw"},
                )
            ).json()
            sockets[name] = TradovateSocket(sim.ws_url, body["accessToken"])
            await sockets[name].connect()
        fault = {
            "userId": users["troubled"],
            "errorStatus": 503,
            "errorCount": 1,
            "endpoints": ["contract/find"],
        }
        (await http.post(sim.url + "/admin/faults", json=fault)).raise_for_status()

        async def socket_for(login_id: str) -> TradovateSocket:
            return sockets[login_id]

        bus = await Bus.connect(nats_url, "lookup-test")
        try:
            view = VenueView(bus, LiveClock(), socket_for)
            first = asyncio.create_task(view.contract_id("troubled", SYMBOL))
            await asyncio.sleep(0)  # the troubled login's lookup is the shared one
            second = asyncio.create_task(view.contract_id("fine", SYMBOL))
            results = await asyncio.gather(first, second, return_exceptions=True)
        finally:
            await bus.close()
            for sock in sockets.values():
                await sock.close()
        finds = [r for r in sim.state.requests if r.endpoint == "contract/find"]
        info = sim.venue.contracts.resolve(SYMBOL)

    assert isinstance(results[0], VenueError)  # its own failure
    assert info is not None
    assert results[1] == info.contract.id
    assert [r.user_id for r in finds] == [users["troubled"], users["fine"]]
