"""Ownership and order of intents (ADR-0050, ADR-0051) over real NATS, Redis and the simulator.

Each test stages one hole of issue 10: a busy replica's heartbeat, a claim taken over from a live
owner, a send after losing the claim, the unknown-outcome grace measured from before the permit,
an account reordered by a nak, one login's lockout stalling another login of the shard, a
graceful stop, a batch fetched but not started, and a batch that can never finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from phalanx_common import subjects
from phalanx_common.bus import Bus, ConsumerLoop, ConsumerSpec
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode, decode_event, encode
from phalanx_common.events import (
    AnyEvent,
    ExecBatch,
    IntentKind,
    OrderAccepted,
    OrderIntent,
    VenueAction,
)
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import (
    AccountGuardRecord,
    IntentLeaseRecord,
    IntentRecord,
    ReplicaHeartbeat,
    TokenRecord,
    TradingStateRecord,
)
from phalanx_executor.account_order import AccountOrder
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.claim_leases import ClaimLeases
from phalanx_executor.gates import Gates
from phalanx_executor.intents import IntentStore
from phalanx_executor.membership import Membership
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.ratelimit import Budget, RateLimiter
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker import BatchWorker, IntentOutcome, WorkerSettings
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import log_in
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

SYMBOL = "MESZ6"
LOGINS = ("trader", "other")


class RecordingPermits(Permits):
    """Permits that remember when each was granted (to compare with ``sent_ns``)."""

    def __init__(self, limiter: RateLimiter) -> None:
        super().__init__(limiter)
        self.granted_ns: list[int] = []

    async def acquire(self, budgets: Sequence[Budget], priority: Priority) -> None:
        await super().acquire(budgets, priority)
        self.granted_ns.append(LiveClock().time_ns())


@dataclass
class Rig:
    sim: Simulator
    bus: Bus
    pool: ConnectionPool
    view: VenueView
    states: KvMirror[TradingStateRecord]
    guards: KvMirror[AccountGuardRecord]
    redis_url: str
    tokens: dict[str, TokenRecord]
    accounts: dict[str, list[tuple[int, str]]]
    seq: int = 0
    loops: list[ConsumerLoop] = field(default_factory=list)

    async def worker(self, owner: str, **settings: Any) -> BatchWorker:
        limiter = RateLimiter(aioredis.from_url(self.redis_url))
        permits = settings.pop("permits", None)
        leases_kv = settings.pop("leases_kv", None)
        return BatchWorker(
            bus=self.bus,
            store=IntentStore(await self.bus.key_value(subjects.Buckets.INTENTS), owner),
            pool=self.pool,
            limiter=limiter,
            permits=permits,
            view=self.view,
            gates=Gates(self.states, self.guards, self.view),
            clock=LiveClock(),
            leases=ClaimLeases(
                leases_kv or await self.bus.key_value(subjects.Buckets.INTENT_LEASES),
                owner,
                LiveClock(),
                settings.pop("claim_lease_s", 2.0),
                grace_s=settings.get("reconcile_grace_s", 0.3),  # as the service wires it
            ),
            order=AccountOrder(await self.bus.key_value(subjects.Buckets.ACCOUNT_ORDER)),
            settings=WorkerSettings(
                **{"login_windows": ((70, 60),), "reconcile_grace_s": 0.3, **settings}
            ),
        )

    def intent(
        self,
        kind: IntentKind = "entry",
        action: VenueAction = "Buy",
        account: int = 0,
        login: str = "trader",
        **extra: Any,
    ) -> OrderIntent:
        self.seq += 1
        account_id, spec = self.accounts[login][account]
        return OrderIntent(
            intent_id=f"sig{self.seq}-{account_id}",
            signal_id=f"sig{self.seq}",
            strategy_id="strat",
            account_id=account_id,
            account_spec=spec,
            login_id=login,
            kind=kind,
            action=action,
            symbol=SYMBOL,
            quantity=1,
            signal_seq=self.seq,
            **extra,
        )

    def batch(self, *intents: OrderIntent, shard: int = 0) -> ExecBatch:
        first = intents[0]
        return ExecBatch(
            event_id=f"batch-{first.intent_id}",
            ts_event=LiveClock().time_ns(),
            ts_init=LiveClock().time_ns(),
            batch_id=f"batch-{first.intent_id}",
            signal_id=first.signal_id,
            strategy_id=first.strategy_id,
            shard=shard,
            intents=intents,
        )

    async def publish(self, batch: ExecBatch) -> None:
        await self.bus.publish(subjects.exec_subject(batch.shard), batch, msg_id=batch.batch_id)

    async def consume(
        self, worker: BatchWorker, shard: int = 0, concurrency: int = 1, max_deliver: int = -1
    ) -> ConsumerLoop:
        loop = await self.bus.consume(
            ConsumerSpec(
                subjects.EXEC.name,
                subjects.exec_consumer(shard),
                filter_subject=subjects.exec_subject(shard),
                ack_wait_s=5.0,
                max_deliver=max_deliver,
            ),
            worker.handle,
            batch=concurrency,
            concurrency=concurrency,
            double_ack=True,
        )
        self.loops.append(loop)
        return loop

    def position(self, account: int = 0, login: str = "trader") -> int:
        account_id = self.accounts[login][account][0]
        book = self.sim.state.books.get(account_id)
        rows = book.positions.values() if book is not None else []
        return sum(int(getattr(p, "netPos", 0) or 0) for p in rows)

    def venue_orders(self, account: int = 0, login: str = "trader") -> int:
        account_id = self.accounts[login][account][0]
        book = self.sim.state.books.get(account_id)
        if book is None:
            return 0
        return len([r for r in book.orders.values() if _parent(r) is None])

    async def record(self, intent: OrderIntent) -> IntentRecord | None:
        kv = await self.bus.key_value(subjects.Buckets.INTENTS)
        try:
            entry = await kv.get(intent.intent_id)
        except KeyNotFoundError:
            return None
        return decode(entry.value or b"", IntentRecord) if entry.value else None

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        async with httpx.AsyncClient() as http:
            resp = await http.request(method, self.sim.url + path, json=body)
            resp.raise_for_status()


def _parent(rec: Any) -> Any:
    order = getattr(rec, "order", rec)
    return getattr(order, "parentId", None)


@pytest_asyncio.fixture
async def rig(nats_url: str, redis_url: str) -> AsyncIterator[Rig]:
    async with Simulator(port=0) as sim:
        sim.set_price(SYMBOL, 6000)
        tokens: dict[str, TokenRecord] = {}
        accounts: dict[str, list[tuple[int, str]]] = {}
        for login in LOGINS:
            user = sim.create_user(login, "pw", accounts=2)
            tokens[login] = await log_in(sim, login, user.userId)
            accounts[login] = [(int(a["id"]), str(a["name"])) for a in user.accounts]
        bus = await Bus.connect(nats_url, "t")
        await bus.ensure_topology()
        views: list[VenueView] = []
        pool = ConnectionPool(
            sim.ws_url,
            token_for=tokens.get,
            on_props=lambda login, ev: views[0].submit(login, ev),
            on_snapshot=lambda login, snap: views[0].ingest_snapshot(login, snap),
            max_sockets=10,
        )
        view = VenueView(bus, LiveClock(), pool.get)
        views.append(view)
        view.start()
        states = KvMirror(await bus.key_value(subjects.Buckets.TRADING_STATE), TradingStateRecord)
        guards = KvMirror(await bus.key_value(subjects.Buckets.GUARDS), AccountGuardRecord)
        await states.start()
        await guards.start()
        r = Rig(sim, bus, pool, view, states, guards, redis_url, tokens, accounts)
        try:
            yield r
        finally:
            stopping = asyncio.gather(*(loop.stop() for loop in r.loops), return_exceptions=True)
            with contextlib.suppress(TimeoutError):  # a test that failed may leave one stuck
                await asyncio.wait_for(stopping, 15)
            await states.stop()
            await guards.stop()
            await view.stop()
            await pool.close()
            await bus.close()


async def _accepted_events(bus: Bus) -> list[OrderAccepted]:
    """Subscribe to order outcomes; the list fills as they arrive."""
    seen: list[OrderAccepted] = []

    async def on_msg(msg: Msg) -> None:
        event = decode_event(msg.data)
        if isinstance(event, OrderAccepted):
            seen.append(event)

    await bus.nc.subscribe("orders.>", cb=on_msg)
    return seen


# -- hole 1: liveness that does not depend on how busy the replica is -----------------------


async def test_the_heartbeat_goes_on_while_a_rebalance_is_stuck_on_shard_work(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "t")
    try:
        await bus.ensure_topology()
        kv = await bus.key_value(subjects.Buckets.SHARD_LEASES)
        mirror = KvMirror(kv, ReplicaHeartbeat)
        await mirror.start()
        stuck = asyncio.Event()
        calls: list[list[int]] = []

        async def on_assignment(shards: list[int]) -> None:
            calls.append(shards)
            if len(calls) > 1:  # e.g. stopping a consumer whose batch waits out a long permit
                stuck.set()
                await asyncio.Event().wait()

        membership = Membership(
            kv=kv,
            mirror=mirror,
            clock=LiveClock(),
            ordinal=0,
            owner="r0",
            shards=4,
            lease_ttl_s=1.0,
            lease_renew_s=0.2,
            on_assignment=on_assignment,
        )
        await membership.start()
        # another replica appears: the rebalance starts and gets stuck in the shard work
        other = ReplicaHeartbeat(ordinal=1, owner="r1", expires_ns=LiveClock().time_ns() + 10**12)
        await kv.put("replica.1", encode(other))
        await asyncio.wait_for(stuck.wait(), 10)
        stuck_at = LiveClock().time_ns()
        await asyncio.sleep(2.5)  # more than two heartbeat lifetimes

        entry = await kv.get("replica.0")
        beat = decode(entry.value or b"", ReplicaHeartbeat)
        assert beat.expires_ns > stuck_at + 1_000_000_000  # renewed after the rebalance stuck
        assert 0 in membership.live()
        await membership.stop()
        await mirror.stop()
    finally:
        await bus.close()


# -- hole 1: claims with owner leases, checked before every send ------------------------------


async def test_a_claim_whose_owner_waits_for_a_long_permit_is_not_taken_over(rig: Rig) -> None:
    # One request per 6 s: the second intent's owner waits for its permit far past the grace.
    owner = await rig.worker("replica-a", login_windows=((1, 6.0),), permit_handback_s=0)
    second_replica = await rig.worker("replica-b", login_windows=((1, 6.0),), permit_handback_s=0)
    assert (await owner.execute(rig.intent())).state == "accepted"

    intent = rig.intent(account=1)
    working = asyncio.create_task(owner.execute(intent))
    await eventually(lambda: rig.record(intent), what="claimed by replica-a")
    await asyncio.sleep(1.0)  # the claim is now older than the 0.3 s reconcile grace

    assert (await second_replica.execute(intent)).state == "pending"
    assert (await working).state == "accepted"
    assert rig.venue_orders(account=1) == 1
    record = await rig.record(intent)
    assert record is not None
    assert (record.state, record.owner, record.attempt) == ("accepted", "replica-a", 1)


async def test_an_accepted_claim_keeps_its_lease_and_a_later_delivery_only_republishes(
    rig: Rig,
) -> None:
    # ADR-0145: the owner does not delete the lease of a claim it made terminal.
    owner = await rig.worker("replica-a", claim_lease_s=30.0)
    other = await rig.worker("replica-b")
    intent = rig.intent()
    assert (await owner.execute(intent)).state == "accepted"
    leases = await rig.bus.key_value(subjects.Buckets.INTENT_LEASES)
    lease = decode((await leases.get(intent.intent_id)).value or b"", IntentLeaseRecord)
    assert lease.owner == "replica-a"
    assert (await other.execute(intent)).state == "duplicate"
    assert rig.venue_orders() == 1


async def test_no_send_after_the_claim_was_taken_over_while_waiting_for_a_permit(
    rig: Rig,
) -> None:
    owner = await rig.worker("replica-a", login_windows=((1, 6.0),), permit_handback_s=0)
    assert (await owner.execute(rig.intent())).state == "accepted"

    intent = rig.intent(account=1)
    working = asyncio.create_task(owner.execute(intent))
    record = await eventually(lambda: rig.record(intent), what="claimed by replica-a")
    assert record is not None
    # Another replica took the claim over meanwhile (it believed the owner dead).
    kv = await rig.bus.key_value(subjects.Buckets.INTENTS)
    taken = IntentRecord(
        intent_id=intent.intent_id, state="unknown", owner="replica-b", claimed_ns=record.claimed_ns
    )
    await kv.put(intent.intent_id, encode(taken))

    assert (await working).state == "pending"
    assert rig.venue_orders(account=1) == 0
    after = await rig.record(intent)
    assert after is not None
    assert after.owner == "replica-b"


# -- ADR-0181: a fresh claim's lease is written only if its work outlasts a renewal period ---


# 3 s grace, 2 s lease: a fresh claim's first lease write waits 0.5 s; one request per 6 s.
_DEFERRED_LEASE: dict[str, Any] = {
    "login_windows": ((1, 6.0),),
    "permit_handback_s": 0,
    "reconcile_grace_s": 3.0,
    "claim_lease_s": 2.0,
}


async def test_an_intent_that_ends_within_a_renewal_period_writes_no_lease(rig: Rig) -> None:
    # The service's defaults: 12 s grace, 15 s lease (renewed every 3.75 s).
    owner = await rig.worker("replica-a", reconcile_grace_s=12.0, claim_lease_s=15.0)
    intent = rig.intent()
    assert (await owner.execute(intent)).state == "accepted"
    leases = await rig.bus.key_value(subjects.Buckets.INTENT_LEASES)
    with pytest.raises(KeyNotFoundError):
        await leases.get(intent.intent_id)
    assert rig.venue_orders() == 1


async def test_a_young_claim_is_not_taken_over_before_its_lease_and_not_after_it(
    rig: Rig,
) -> None:
    settings = dict(_DEFERRED_LEASE)  # the second intent's permit comes only after 6 s
    owner = await rig.worker("replica-a", **settings)
    other = await rig.worker("replica-b", **settings)
    assert (await owner.execute(rig.intent())).state == "accepted"

    intent = rig.intent(account=1)
    working = asyncio.create_task(owner.execute(intent))
    await eventually(lambda: rig.record(intent), what="claimed by replica-a")
    assert (await other.execute(intent)).state == "pending"  # young, lease or not
    leases = await rig.bus.key_value(subjects.Buckets.INTENT_LEASES)

    async def lease_owner() -> str | None:
        try:
            entry = await leases.get(intent.intent_id)
        except KeyNotFoundError:
            return None
        return decode(entry.value or b"", IntentLeaseRecord).owner

    assert await eventually(lease_owner, what="the deferred lease written") == "replica-a"
    await asyncio.sleep(3.5)  # the claim is older than the grace now: only the lease holds it
    assert not working.done()
    assert (await other.execute(intent)).state == "pending"
    assert (await working).state == "accepted"
    assert rig.venue_orders(account=1) == 1


class RefusesWrites:
    """The leases bucket, refusing every write (JetStream unable to store them)."""

    def __init__(self, kv: Any) -> None:
        self._kv = kv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def _refuse(self, *args: Any, **kwargs: Any) -> int:
        raise TimeoutError("staged: lease write timed out")

    put = create = update = _refuse


async def test_an_owner_whose_lease_never_gets_written_sends_nothing_once_its_claim_is_old(
    rig: Rig,
) -> None:
    refusing = RefusesWrites(await rig.bus.key_value(subjects.Buckets.INTENT_LEASES))
    settings = dict(_DEFERRED_LEASE)
    first = await rig.worker("replica-a", **settings)
    assert (await first.execute(rig.intent())).state == "accepted"  # no lease written: fine
    owner = await rig.worker("replica-a", leases_kv=refusing, **settings)
    intent = rig.intent(account=1)
    # Its permit comes after ~6 s, when the claim is past the 3 s grace and has no lease.
    assert (await owner.execute(intent)).state == "pending"
    assert rig.venue_orders(account=1) == 0


# -- hole 2: the unknown-outcome grace starts when the request goes out -----------------------


async def test_sent_ns_is_taken_after_the_permit_wait(rig: Rig) -> None:
    permits = RecordingPermits(RateLimiter(aioredis.from_url(rig.redis_url)))
    worker = await rig.worker("o", login_windows=((1, 2.0),), permits=permits, permit_handback_s=0)
    seen = await _accepted_events(rig.bus)
    assert (await worker.execute(rig.intent())).state == "accepted"
    second = rig.intent(account=1)
    assert (await worker.execute(second)).state == "accepted"

    [event] = await eventually(
        lambda: [e for e in seen if e.intent_id == second.intent_id], what="accepted event"
    )
    # the last permit was the second intent's; its request went out after it was granted
    assert event.sent_ns >= permits.granted_ns[-1]


# -- hole 3: a nak never reorders an account ---------------------------------------------------


async def test_an_exit_never_overtakes_an_entry_released_by_a_socket_blip(rig: Rig) -> None:
    worker = await rig.worker("o")
    await rig.pool.get("trader")
    user_id = rig.tokens["trader"].user_id
    # The login's socket drops as the entry arrives, and cannot come back for a moment.
    await rig.admin(
        "POST",
        "/admin/faults",
        {
            "userId": user_id,
            "errorStatus": 503,
            "errorCount": 1000,
            "endpoints": ["user/syncrequest"],
        },
    )
    await rig.admin("POST", "/admin/sockets/drop", {"userId": user_id})
    await eventually(lambda: not rig.pool.is_connected("trader"), what="socket dropped")
    entry = rig.intent()
    assert (await worker.execute(entry)).state == "not-ready"  # released: nothing sent

    await rig.admin("DELETE", f"/admin/faults?userId={user_id}")
    exit_ = rig.intent(kind="exit", action="Sell")
    first_try = await worker.execute(exit_)  # the exit comes right after, on a good socket

    # however the exit's first try ended, once both are redelivered the account is flat
    for _ in range(3):
        for intent in (entry, exit_):
            await worker.execute(intent)
    await eventually(lambda: rig.position() == 0 and rig.venue_orders() >= 1, what="flat")
    assert first_try.state == "waiting"
    exit_record = await rig.record(exit_)
    assert exit_record is not None
    assert exit_record.state == "accepted"


async def test_redelivered_batches_keep_an_accounts_entry_before_its_exit(rig: Rig) -> None:
    """The same blip through the shard consumer: naks and redeliveries, not direct calls."""
    worker = await rig.worker("o")
    await rig.pool.get("trader")
    user_id = rig.tokens["trader"].user_id
    await rig.admin(
        "POST",
        "/admin/faults",
        {
            "userId": user_id,
            "errorStatus": 503,
            "errorCount": 1000,
            "endpoints": ["user/syncrequest"],
        },
    )
    await rig.admin("POST", "/admin/sockets/drop", {"userId": user_id})
    await eventually(lambda: not rig.pool.is_connected("trader"), what="socket dropped")
    outcomes: list[tuple[str, str]] = []
    execute = worker.execute

    async def watched(intent: OrderIntent) -> IntentOutcome:
        outcome = await execute(intent)
        outcomes.append((intent.intent_id, outcome.state))
        return outcome

    worker.execute = watched  # type: ignore[method-assign]
    entry, exit_ = rig.intent(), rig.intent(kind="exit", action="Sell")
    await rig.publish(rig.batch(entry))
    await rig.consume(worker, concurrency=4)
    await eventually(lambda: (entry.intent_id, "not-ready") in outcomes, what="entry released")
    await rig.admin("DELETE", f"/admin/faults?userId={user_id}")
    await rig.publish(rig.batch(exit_))

    await eventually(lambda: _state(rig, exit_, "accepted"), 20.0, what="exit done")
    first_exit = next(state for i, state in outcomes if i == exit_.intent_id)
    assert first_exit in ("waiting", "accepted")  # never refused for a position not there yet
    entry_record = await rig.record(entry)
    assert entry_record is not None
    assert entry_record.state == "accepted"
    await eventually(lambda: rig.position() == 0, what="flat after entry then exit")


# -- hole 10: a locked-out login never stalls another login of the shard ----------------------


async def test_a_locked_out_login_does_not_stall_another_login_on_the_same_shard(
    rig: Rig,
) -> None:
    worker = await rig.worker("o", permit_handback_s=1.0)
    locked_budget: Budget = BudgetBook(((70, 60),), (), "default").for_login("trader")[0]
    await RateLimiter(aioredis.from_url(rig.redis_url)).block(locked_budget, 3600)
    stuck = rig.intent(login="trader")
    free = rig.intent(login="other")
    await rig.publish(rig.batch(stuck))
    await rig.publish(rig.batch(free))
    await rig.consume(worker, concurrency=1)  # one slot: the worst case of "4 at once"

    await eventually(lambda: _state(rig, free, "accepted"), 20.0, what="other login's order")
    assert rig.venue_orders(login="other") == 1
    assert rig.venue_orders(login="trader") == 0


async def _state(rig: Rig, intent: OrderIntent, state: str) -> bool:
    record = await rig.record(intent)
    return record is not None and record.state == state


# -- graceful stop: intents handed back without loss or doubling ------------------------------


async def test_a_graceful_stop_mid_batch_hands_unsent_intents_back(rig: Rig) -> None:
    # one request per 30 s: whichever intent gets the permit second is still waiting at the stop
    leaving = await rig.worker("replica-a", login_windows=((1, 30.0),), permit_handback_s=0)
    intents = (rig.intent(account=0), rig.intent(account=1))
    await rig.publish(rig.batch(*intents))
    loop = await rig.consume(leaving)

    async def one_sent_one_waiting() -> OrderIntent | None:
        records = [await rig.record(i) for i in intents]
        states = sorted(r.state if r is not None else "none" for r in records)
        if states != ["accepted", "claimed"]:
            return None
        return next(i for i, r in zip(intents, records, strict=True) if r and r.state == "claimed")

    waiting = await eventually(one_sent_one_waiting, what="one sent, one waiting for a permit")
    assert waiting is not None
    leaving.begin_stop()
    await loop.stop()
    assert await rig.record(waiting) is None  # released: nothing was sent for it

    # the next owner finds the batch again (a fresh budget window stands for the time passing)
    redis = aioredis.from_url(rig.redis_url)
    await redis.flushall()
    await redis.aclose()
    staying = await rig.worker("replica-b", login_windows=((1, 30.0),), permit_handback_s=0)
    await rig.consume(staying)
    await eventually(lambda: _state(rig, waiting, "accepted"), 20.0, what="taken over")
    assert (rig.venue_orders(account=0), rig.venue_orders(account=1)) == (1, 1)


# -- a batch fetched but not started is never left to time out --------------------------------


async def test_batches_waiting_for_a_slot_are_not_redelivered_behind_a_slow_one(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "t")
    try:
        await bus.ensure_topology()
        release = asyncio.Event()
        deliveries: dict[str, list[int]] = {}

        async def handler(event: AnyEvent, msg: Msg) -> None:
            assert isinstance(event, ExecBatch)
            n = msg.metadata.num_delivered if msg.metadata else 0
            deliveries.setdefault(event.batch_id, []).append(n)
            if event.batch_id == "slow":
                await release.wait()

        for batch_id in ("slow", "b1", "b2"):
            now = LiveClock().time_ns()
            batch = ExecBatch(
                event_id=batch_id,
                ts_event=now,
                ts_init=now,
                batch_id=batch_id,
                signal_id="s",
                strategy_id="strat",
                shard=7,
                intents=(),
            )
            await bus.publish(subjects.exec_subject(7), batch, msg_id=batch_id)
        spec = ConsumerSpec(
            subjects.EXEC.name,
            subjects.exec_consumer(7),
            filter_subject=subjects.exec_subject(7),
            ack_wait_s=2.0,
        )
        busy = await bus.consume(spec, handler, batch=3, concurrency=1, double_ack=True)
        await eventually(lambda: "slow" in deliveries, what="slow batch started")
        # a second replica on the same shard, with free slots
        idle = await bus.consume(spec, handler, batch=3, concurrency=1, double_ack=True)
        await eventually(lambda: "b1" in deliveries and "b2" in deliveries, 15.0, what="b1, b2 ran")
        await asyncio.sleep(4.0)  # two ack waits while the slow batch still runs
        release.set()
        await busy.stop()
        await idle.stop()
        # each ran once, on its first delivery: none sat unattended behind the slow batch
        assert deliveries["b1"] == [1]
        assert deliveries["b2"] == [1]
    finally:
        await bus.close()


# -- bounded redelivery: a batch that can never finish ends with an outcome per intent ---------


async def test_a_batch_that_can_never_run_is_dead_lettered_with_an_outcome_per_intent(
    rig: Rig,
) -> None:
    worker = await rig.worker("o", max_deliveries=2)
    # a login nobody holds a token for: it can never connect, and the intent has no deadline
    never = OrderIntent(
        intent_id="never-999999",
        signal_id="never",
        strategy_id="strat",
        account_id=999999,
        account_spec="NOBODY1",
        login_id="nobody",
        kind="entry",
        action="Buy",
        symbol=SYMBOL,
        quantity=1,
        signal_seq=1,
    )
    await rig.publish(rig.batch(never))
    await rig.consume(worker, max_deliver=3)

    await eventually(lambda: _state(rig, never, "rejected"), 20.0, what="dead-lettered")
    record = await rig.record(never)
    assert record is not None
    assert record.reason == "undeliverable"
