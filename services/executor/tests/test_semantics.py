"""Execution semantics against real NATS, Redis and the simulator (issue 10, holes 7-9).

- 7: "settled" is not "filled"; an unknown position never reads as 0 (ADR-0060);
- 8: guards check the resulting position; side swap off closes; REDUCING keeps a reversal's
  exit half; bracket legs follow the position after a partial exit (ADR-0060);
- 9: every fill the venue reports reaches the FILLS stream (ADR-0061).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from nats.js.errors import KeyNotFoundError

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode, encode
from phalanx_common.events import FillReceived, IntentKind, OrderIntent, VenueAction
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import (
    AccountGuardRecord,
    IntentRecord,
    TokenRecord,
    TradingStateRecord,
)
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import RateLimiter
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker import BatchWorker, WorkerSettings
from phalanx_sim import Simulator
from phalanx_testing.servers import ServerProcess
from phalanx_testing.sim_tokens import log_in
from phalanx_testing.waiting import eventually
from phalanx_tradovate import SyncSnapshot

pytestmark = pytest.mark.integration

SYMBOL = "MESZ6"


@dataclass
class Rig:
    sim: Simulator
    bus: Bus
    worker: BatchWorker
    view: VenueView
    pool: ConnectionPool
    token: TokenRecord
    accounts: list[tuple[int, str]]
    states: KvMirror[TradingStateRecord]
    guards: KvMirror[AccountGuardRecord]
    seq: int = 0

    def intent(
        self,
        kind: IntentKind = "entry",
        action: VenueAction = "Buy",
        quantity: int = 1,
        account: int = 0,
        **extra: Any,
    ) -> OrderIntent:
        self.seq += 1
        account_id, spec = self.accounts[account]
        return OrderIntent(
            intent_id=f"sig{self.seq}-{account_id}",
            signal_id=f"sig{self.seq}",
            strategy_id="strat",
            account_id=account_id,
            account_spec=spec,
            login_id="trader",
            kind=kind,
            action=action,
            symbol=SYMBOL,
            quantity=quantity,
            **extra,
        )

    def position(self, account: int = 0) -> int:
        book = self.sim.state.books.get(self.accounts[account][0])
        rows = book.positions.values() if book is not None else []
        return sum(int(getattr(p, "netPos", 0) or 0) for p in rows)

    def working(self, account: int = 0) -> list[Any]:
        book = self.sim.state.books.get(self.accounts[account][0])
        if book is None:
            return []
        return [r for r in book.orders.values() if r.order.ordStatus in ("Working", "Suspended")]

    async def admin(self, path: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient() as http:
            (await http.post(self.sim.url + path, json=body)).raise_for_status()

    async def place_directly(self, account: int, action: str, qty: int) -> int:
        """An order placed at the venue by someone else (a person in the broker's app)."""
        account_id, spec = self.accounts[account]
        async with httpx.AsyncClient() as http:
            resp = await http.post(
                self.sim.rest_url + "/order/placeorder",
                headers={"Authorization": f"Bearer {self.token.access_token}"},
                json={
                    "accountSpec": spec,
                    "accountId": account_id,
                    "action": action,
                    "symbol": SYMBOL,
                    "orderQty": qty,
                    "orderType": "Market",
                    "isAutomated": False,
                },
            )
        return int(resp.json()["orderId"])

    async def record(self, intent_id: str) -> IntentRecord:
        entry = await (await self.bus.key_value(subjects.Buckets.INTENTS)).get(intent_id)
        return decode(entry.value or b"", IntentRecord)

    async def close(self) -> None:
        await self.states.stop()
        await self.guards.stop()
        await self.view.stop()
        await self.pool.close()
        await self.bus.close()


SnapshotHook = Callable[[str, SyncSnapshot], Awaitable[None]]


async def _rig(
    nats_url: str,
    redis_url: str,
    sim: Simulator,
    snapshot_gate: asyncio.Event | None = None,
    keep_finished: int = 50_000,
) -> Rig:
    user = sim.create_user("trader", "pw", accounts=2)
    sim.set_price(SYMBOL, 6000)
    token = await log_in(sim, "trader", user.userId)
    bus = await Bus.connect(nats_url, "t")
    await bus.ensure_topology()
    views: list[VenueView] = []

    async def on_snapshot(login: str, snap: SyncSnapshot) -> None:
        if snapshot_gate is not None:
            await snapshot_gate.wait()  # a snapshot still on its way
        await views[0].ingest_snapshot(login, snap)

    pool = ConnectionPool(
        sim.ws_url,
        token_for=lambda login: token if login == "trader" else None,
        on_props=lambda login, ev: views[0].submit(login, ev),
        on_snapshot=on_snapshot,
        max_sockets=10,
    )
    view = VenueView(bus, LiveClock(), pool.get, keep_finished=keep_finished)
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
        limiter=RateLimiter(aioredis.from_url(redis_url, socket_connect_timeout=0.5)),
        view=view,
        gates=Gates(states, guards, view),
        clock=LiveClock(),
        settings=WorkerSettings(
            login_windows=((70, 60),),
            reconcile_grace_s=0.3,
            reversal_wait_s=5.0,
            settle_s=0.3,
            position_wait_s=0.5,
        ),
    )
    accounts = [(int(a["id"]), str(a["name"])) for a in user.accounts]
    return Rig(sim, bus, worker, view, pool, token, accounts, states, guards)


@pytest_asyncio.fixture
async def rig(nats_url: str, redis_url: str) -> AsyncIterator[Rig]:
    async with Simulator(port=0) as sim:
        r = await _rig(nats_url, redis_url, sim)
        try:
            yield r
        finally:
            await r.close()


async def _settle(rig: Rig, account: int = 0) -> None:
    account_id = rig.accounts[account][0]
    cid = await rig.view.contract_id("trader", SYMBOL)
    await eventually(lambda: rig.view.known_position(account_id, cid) == rig.position(account))


async def _set_state(rig: Rig, scope: str, state: str) -> None:
    kv = await rig.bus.key_value(subjects.Buckets.TRADING_STATE)
    await kv.put(scope, encode(TradingStateRecord(scope=scope, state=state)))  # type: ignore[arg-type]
    await eventually(lambda: (r := rig.states.get(scope)) is not None and r.state == state)


async def _guard(rig: Rig, **limits: Any) -> None:
    account_id = rig.accounts[0][0]
    kv = await rig.bus.key_value(subjects.Buckets.GUARDS)
    await kv.put(str(account_id), encode(AccountGuardRecord(account_id=account_id, **limits)))
    await eventually(lambda: rig.guards.get(str(account_id)) is not None)


# -- 7: settled is not filled; an unknown position is not 0 ------------------------------------


async def test_an_exit_right_after_a_market_entry_whose_fill_is_late_is_retried_not_refused(
    rig: Rig,
) -> None:
    await rig.admin("/admin/heldfills", {"accountId": rig.accounts[0][0], "held": True})
    entry = await rig.worker.execute(rig.intent(quantity=2))
    assert entry.state == "accepted"  # answered and Working, but not filled yet
    assert rig.position() == 0

    exit_ = rig.intent(kind="exit")
    first = await rig.worker.execute(exit_)
    assert first.state == "not-ready"  # retryable: the position is not known, not "no position"
    with pytest.raises(KeyNotFoundError):  # claim released: a redelivery decides again
        await (await rig.bus.key_value(subjects.Buckets.INTENTS)).get(exit_.intent_id)

    await rig.admin("/admin/heldfills", {"accountId": rig.accounts[0][0], "held": False})
    rig.sim.set_price(SYMBOL, 6000)  # the late fill arrives
    assert rig.position() == 2
    assert (await rig.worker.execute(exit_)).state == "accepted"  # the redelivery
    await eventually(lambda: rig.position() == 0, what="flat after the exit")


async def test_an_account_without_a_sync_snapshot_yet_has_no_position_of_0(
    nats_url: str, redis_url: str
) -> None:
    gate = asyncio.Event()
    async with Simulator(port=0) as sim:
        rig = await _rig(nats_url, redis_url, sim, snapshot_gate=gate)
        try:
            await rig.place_directly(0, "Buy", 1)  # long 1 before this replica syncs
            connecting = asyncio.create_task(rig.pool.get("trader"))
            await eventually(lambda: rig.pool.is_connected("trader"), what="socket open")
            assert not connecting.done()  # its snapshot is still on its way

            # Not "flat": after a bounded wait for the snapshot, the position is read from the
            # venue, and the exit closes the long.
            exit_ = rig.intent(kind="exit")
            assert (await rig.worker.execute(exit_)).state == "accepted"
            await eventually(lambda: rig.position() == 0, what="flat after the exit")
            assert not connecting.done()

            gate.set()
            await connecting
        finally:
            gate.set()
            await rig.close()


# -- 8: guards and TradersPost semantics ------------------------------------------------------


async def test_max_contracts_checks_the_position_a_reversal_ends_at(rig: Rig) -> None:
    await rig.worker.execute(rig.intent(action="Sell", quantity=2))
    await _settle(rig)
    await _guard(rig, max_contracts=3)

    too_big = rig.intent(action="Buy", quantity=5)  # -2 + 5 = 3, but it would end long 5
    assert (await rig.worker.execute(too_big)).state == "accepted"  # the exit half went out
    await eventually(lambda: rig.position() == 0, what="closed, not reversed to 5")
    record = await rig.record(too_big.intent_id)
    assert "max-contracts" in record.reason

    await _settle(rig)
    await rig.worker.execute(rig.intent(action="Sell", quantity=3))
    await _settle(rig)
    fits = rig.intent(action="Buy", quantity=3)  # -3 + 3 = 0 then long 3: within the max
    assert (await rig.worker.execute(fits)).state == "accepted"
    await eventually(lambda: rig.position() == 3, what="reversed to long 3")


async def test_an_opposite_signal_with_side_swapping_off_closes_the_position(rig: Rig) -> None:
    await rig.worker.execute(rig.intent(quantity=2))
    await _settle(rig)
    sell = rig.intent(action="Sell", quantity=1, allow_reversal=False)
    assert (await rig.worker.execute(sell)).state == "accepted"
    await eventually(lambda: rig.position() == 0, what="long closed, no short opened")
    assert "side-swap-disabled" in (await rig.record(sell.intent_id)).reason


async def test_reducing_sends_a_reversals_exit_half_and_refuses_only_its_entry(rig: Rig) -> None:
    await rig.worker.execute(rig.intent(action="Sell", quantity=2))
    await _settle(rig)
    await _set_state(rig, f"account.{rig.accounts[0][0]}", "REDUCING")
    buy = rig.intent(action="Buy", quantity=1)
    assert (await rig.worker.execute(buy)).state == "accepted"
    await eventually(lambda: rig.position() == 0, what="short closed, no long opened")
    assert "trading-reducing" in (await rig.record(buy.intent_id)).reason


def _legs(rig: Rig) -> list[tuple[str, int]]:
    return sorted(
        (r.version.orderType, r.version.orderQty)
        for r in rig.working()
        if r.order.parentId is not None
    )


@pytest.mark.parametrize("exit_fields", [{"exit_quantity": 2}, {"exit_percent": Decimal(50)}])
async def test_after_a_partial_exit_the_bracket_legs_follow_the_position(
    rig: Rig, exit_fields: dict[str, Any]
) -> None:
    entry = rig.intent(quantity=4, take_profit=Decimal(6050), stop_loss=Decimal(5950))
    assert (await rig.worker.execute(entry)).state == "accepted"
    await _settle(rig)
    assert _legs(rig) == [("Limit", 4), ("Stop", 4)]

    assert (await rig.worker.execute(rig.intent(kind="exit", **exit_fields))).state == "accepted"
    await eventually(lambda: rig.position() == 2, what="half exited")
    assert _legs(rig) == [("Limit", 2), ("Stop", 2)]

    rig.sim.set_price(SYMBOL, 5940)  # the stop fires
    assert rig.position() == 0  # flat, never short
    assert _legs(rig) == []


# -- 9: every fill reaches the FILLS stream ----------------------------------------------------


async def _fills_in_stream(nats_url: str, account: int | str) -> list[FillReceived]:
    subject = account if isinstance(account, str) else subjects.fills_subject(account)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, durable=None)
        found: list[FillReceived] = []
        try:
            for msg in await sub.fetch(100, timeout=0.5):
                found.append(decode(msg.data, FillReceived))
        except nats.errors.TimeoutError:
            pass
        return found
    finally:
        await nc.close()


async def test_the_fill_of_an_order_the_view_does_not_know_reaches_the_fills_stream(
    nats_url: str, redis_url: str
) -> None:
    async with Simulator(port=0) as sim:
        # keep_finished=0: a finished order is forgotten at once, so its fill, handled after
        # the order's Filled update, belongs to an order this view does not know.
        rig = await _rig(nats_url, redis_url, sim, keep_finished=0)
        try:
            await rig.pool.get("trader")
            order_id = await rig.place_directly(0, "Buy", 2)
            account_id = rig.accounts[0][0]

            async def arrived() -> bool:
                fills = await _fills_in_stream(nats_url, account_id)
                return [(f.order_id, f.qty) for f in fills] == [(order_id, 2)]

            await eventually(arrived, what="the manual order's fill in FILLS")
        finally:
            await rig.close()


async def test_a_fill_whose_order_not_even_the_venue_will_name_is_published_unattributed(
    nats_url: str, redis_url: str
) -> None:
    async with Simulator(port=0) as sim:
        rig = await _rig(nats_url, redis_url, sim, keep_finished=0)
        try:
            await rig.pool.get("trader")
            await rig.admin(
                "/admin/faults",
                {
                    "userId": rig.token.user_id,
                    "errorStatus": 503,
                    "errorCount": 100,
                    "endpoints": ["order/item"],
                },
            )
            order_id = await rig.place_directly(0, "Buy", 1)

            async def arrived() -> list[FillReceived]:
                return await _fills_in_stream(nats_url, subjects.UNATTRIBUTED_FILLS)

            [fill] = await eventually(arrived, what="the fill on fills.unattributed")
            assert (fill.order_id, fill.account_id, fill.qty) == (order_id, 0, 1)
            assert rig.view.unattributed_fills == 1
        finally:
            await rig.close()


async def test_a_fill_whose_publish_fails_reaches_the_fills_stream_later(
    nats_url: str, redis_url: str
) -> None:
    async with Simulator(port=0) as sim:
        rig = await _rig(nats_url, redis_url, sim)
        nc = await nats.connect(nats_url)
        try:
            await rig.pool.get("trader")
            js = nc.jetstream()
            config = (await js.stream_info(subjects.FILLS.name)).config
            # JetStream stops taking fills (no stream for the subject: every publish fails
            # with "no responders") while the venue reports one.
            await js.update_stream(dataclasses.replace(config, subjects=["fills.paused"]))
            order_id = await rig.place_directly(0, "Sell", 1)
            await eventually(lambda: rig.view.outbox.failures >= 2, what="failed publishes")
            await js.update_stream(config)

            async def arrived() -> bool:
                fills = await _fills_in_stream(nats_url, rig.accounts[0][0])
                return [f.order_id for f in fills] == [order_id]

            await eventually(arrived, timeout=30, what="the fill in FILLS once it takes them")
        finally:
            await nc.close()
            await rig.close()


async def test_a_fill_reported_while_nats_is_down_reaches_the_fills_stream_later(
    nats_server: ServerProcess, redis_url: str
) -> None:
    async with Simulator(port=0) as sim:
        rig = await _rig(nats_server.url, redis_url, sim)
        try:
            await rig.pool.get("trader")
            nats_server.proc.terminate()  # NATS down (its data directory is kept)
            nats_server.proc.wait(timeout=5)
            order_id = await rig.place_directly(0, "Sell", 1)
            await eventually(lambda: rig.view.outbox.failures > 0, what="a failed publish")
            nats_server.restart()

            async def arrived() -> bool:
                fills = await _fills_in_stream(nats_server.url, rig.accounts[0][0])
                return [f.order_id for f in fills] == [order_id]

            await eventually(arrived, timeout=30, what="the fill in FILLS after the outage")
            await eventually(lambda: rig.view.outbox.pending == 0, what="outbox drained")
        finally:
            await rig.close()
