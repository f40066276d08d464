"""A replica keeps sockets only for the logins of the shards it works.

Seen in the chaos test: replicas that started together rebalanced while auth wrote the first
tokens; a token update accepted while a replica owned the login's shard was followed (a
connect) after the shard had moved on, so two replicas held a socket for the same login — two
sessions at the venue, each spending the login's budget on syncs and heartbeats, and each
feeding the same fills to its own view. The ownership check belongs where the socket is stored,
not only where the update is accepted.

A whole in-process replica over real NATS, Redis and the simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import encode
from phalanx_common.crypto import key_ring_from_settings, seal_token
from phalanx_common.records import AccountRecord, TokenRecord
from phalanx_executor.service import ExecutorService, build_executor
from phalanx_executor.settings import ExecutorSettings
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import log_in
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    sim: Simulator
    replica: ExecutorService
    token: TokenRecord

    def connections(self) -> int:
        return len(self.sim.hub.connections)


async def _token(sim: Simulator, user_id: int) -> TokenRecord:
    return await log_in(sim, "trader", user_id)


@pytest_asyncio.fixture
async def rig(nats_url: str, redis_url: str) -> AsyncIterator[Rig]:
    async with Simulator(port=0) as sim:
        user = sim.create_user("trader", "pw", accounts=1)
        token = await _token(sim, user.userId)
        settings = ExecutorSettings(
            nats_url=nats_url,
            redis_url=redis_url,
            tradovate_ws_url=sim.ws_url,
            shards=1,
            executor_port=0,
        )
        bus = await Bus.connect(nats_url, "test")
        await bus.ensure_topology()
        ring = key_ring_from_settings(settings.token_keys, settings.admin_token)
        await (await bus.key_value(subjects.Buckets.TOKENS)).put(
            "trader", encode(seal_token(ring, token))
        )
        account = user.accounts[0]
        record = AccountRecord(
            account_id=int(account["id"]),
            account_spec=str(account["name"]),
            login_id="trader",
            user_id=user.userId,
        )
        await (await bus.key_value(subjects.Buckets.ACCOUNTS)).put(
            str(record.account_id), encode(record)
        )
        replica = await build_executor(settings)
        await replica.start()
        running = Rig(sim, replica, token)
        try:
            await eventually(lambda: running.connections() == 1, 20.0, what="login warmed")
            yield running
        finally:
            await replica.stop()
            await bus.close()


async def test_a_token_update_followed_after_the_shard_moved_away_opens_no_socket(
    rig: Rig,
) -> None:
    pool = rig.replica.pool
    assert pool is not None
    assert pool.has("trader")
    # The shard moves to another replica: its consumer stops and the login's socket closes.
    await rig.replica._work_shards([])
    assert not pool.has("trader")
    await eventually(lambda: rig.connections() == 0, 10.0, what="socket closed at the venue")
    # A token update accepted while the shard was still here is followed only now.
    renewed = await _token(rig.sim, rig.token.user_id)
    await rig.replica._follow_token("trader", renewed)
    assert not pool.has("trader")
    assert rig.connections() == 0


async def test_a_dropped_socket_of_a_login_no_longer_worked_here_is_not_reconnected(
    rig: Rig,
) -> None:
    pool = rig.replica.pool
    assert pool is not None
    assert pool.has("trader")
    # The shard is being handed over: ownership changed, the socket not yet retained away.
    rig.replica.shards = []
    async with httpx.AsyncClient() as http:
        (await http.post(rig.sim.url + "/admin/sockets/drop", json={})).raise_for_status()
    await eventually(lambda: not pool.has("trader"), 10.0, what="the dropped login forgotten")
    assert rig.connections() == 0


async def test_a_shard_taken_over_warms_its_logins_whose_accounts_are_not_mirrored_yet(
    rig: Rig,
) -> None:
    """Seen in a full-suite run: four replicas starting together while auth wrote the first
    tokens and accounts. A replica got a login's token while the shard was still another's
    (a token of a login not worked here is not followed), took the shard over before the
    login's accounts reached its mirror, and warmed only the logins of the accounts it had:
    the login stayed without a socket until an intent needed it."""
    pool = rig.replica.pool
    assert pool is not None
    await rig.replica._work_shards([])
    assert not pool.has("trader")
    # The account record has not reached this replica yet; the token has.
    accounts = rig.replica.accounts
    for key in list(accounts.items()):
        await (await rig.replica.bus.key_value(subjects.Buckets.ACCOUNTS)).delete(key)
    await eventually(lambda: not accounts.items(), 10.0, what="accounts mirror emptied")
    assert rig.replica.trading is not None
    assert rig.replica.trading.mirrors.tokens.get("trader") is not None
    await rig.replica._work_shards([0])
    assert pool.has("trader")
    await eventually(lambda: rig.connections() == 1, 10.0, what="socket open at the venue")
