"""A worker over real NATS, Redis and the simulator whose every venue request takes a permit.

Unlike test_worker's rig, the pool's ``authorize`` and ``user/syncrequest`` and the view's
contract lookups go through the same permits and budgets as orders (as in the service), so the
simulator's violation count is the whole truth about the login's budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.events import OrderIntent
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountGuardRecord, TradingStateRecord
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.venue_calls import VenueCalls
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker import BatchWorker, WorkerSettings
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import SimTokens, log_in, tokens_of_new_users

SYMBOL = "MESZ6"


@dataclass
class BudgetRig:
    sim: Simulator
    bus: Bus
    redis: aioredis.Redis
    worker: BatchWorker
    view: VenueView
    pool: ConnectionPool
    calls: VenueCalls
    accounts: list[tuple[int, str]]
    mirrors: list[KvMirror[Any]]
    login: str = "trader"
    seq: int = 0

    def entry(self, account: int) -> OrderIntent:
        account_id, spec = self.accounts[account]
        return OrderIntent(
            intent_id=f"sig-{account_id}",
            signal_id="sig",
            strategy_id="strat",
            account_id=account_id,
            account_spec=spec,
            login_id=self.login,
            kind="entry",
            action="Buy",
            symbol=SYMBOL,
            quantity=1,
        )

    async def violations(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            body: dict[str, Any] = (await http.get(self.sim.url + "/admin/violations")).json()
        return body

    async def close(self) -> None:
        for mirror in self.mirrors:
            await mirror.stop()
        await self.view.stop()
        await self.pool.close()
        await self.bus.close()
        await self.redis.aclose()


async def budget_rig(
    nats_url: str,
    redis_url: str,
    sim: Simulator,
    *,
    accounts: int,
    login_windows: tuple[tuple[int, float], ...],
    **settings: Any,
) -> BudgetRig:
    user = sim.create_user("trader", "pw", accounts=accounts)
    sim.set_price(SYMBOL, 6000)
    token = await log_in(sim, "trader", user.userId)
    bus = await Bus.connect(nats_url, "t")
    await bus.ensure_topology()
    redis = aioredis.from_url(redis_url, socket_connect_timeout=0.5)
    limiter = RateLimiter(redis)
    permits = Permits(limiter)
    calls = VenueCalls(permits, BudgetBook(login_windows))
    views: list[VenueView] = []
    pool = ConnectionPool(
        sim.ws_url,
        token_for=lambda login: token if login == "trader" else None,
        on_props=lambda login, ev: views[0].submit(login, ev),
        on_snapshot=lambda login, snap: views[0].ingest_snapshot(login, snap),
        max_sockets=10,
        calls=calls,
    )

    async def permit(login_id: str) -> None:
        await calls.permit(login_id, Priority.RECONCILE)

    view = VenueView(bus, LiveClock(), pool.get, permit=permit, honour=calls.honour)
    views.append(view)
    view.start()
    states = KvMirror(await bus.key_value(subjects.Buckets.TRADING_STATE), TradingStateRecord)
    guards = KvMirror(await bus.key_value(subjects.Buckets.GUARDS), AccountGuardRecord)
    await states.start()
    await guards.start()
    worker = BatchWorker(
        bus=bus,
        store=IntentStore(await bus.key_value(subjects.Buckets.INTENTS), "test-owner"),
        pool=pool,
        limiter=limiter,
        permits=permits,
        view=view,
        gates=Gates(states, guards, view),
        clock=LiveClock(),
        settings=WorkerSettings(login_windows=login_windows, **settings),
    )
    made = [(int(a["id"]), str(a["name"])) for a in user.accounts]
    return BudgetRig(sim, bus, redis, worker, view, pool, calls, made, [states, guards])


MakeRig = Callable[..., Awaitable[BudgetRig]]


@pytest.fixture
def make_budget_rig() -> MakeRig:
    """``await make_budget_rig(nats_url, redis_url, sim, accounts=.., login_windows=..)``."""
    return budget_rig


@pytest.fixture
def sim_tokens() -> SimTokens:
    """``await sim_tokens(sim, names)``: a logged-in simulator user per name, its token."""
    return tokens_of_new_users
