"""The planner as a bus consumer, over a real nats-server: isolation, order and delay.

Signals are published to SIGNALS as ingest does (``Nats-Msg-Id`` = signal id); what the planner
made of them is read back from the EXEC and ORDERS streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from opentelemetry import context as otel_context

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus, ConsumerLoop
from phalanx_common.codec import decode_event, encode
from phalanx_common.contracts import ContractBook
from phalanx_common.events import (
    AnyEvent,
    ExecBatch,
    MessageTerminated,
    Signal,
    SignalPlanned,
    SignalReceived,
)
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.delayed_signals import DelayedSignals, delayed_consumer_spec
from phalanx_executor.planner import Planner
from phalanx_executor.signal_consumer import PlanningPolicy, SignalConsumer
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ACCOUNTS = (5001, 5002)


# Short waits so that retries and redeliveries happen within a test.
POLICY = PlanningPolicy(
    attempts=2, backoff_s=0.05, max_deliveries=3, nak_delay_s=0.1, turn_poll_s=0.05, ack_wait_s=3
)


class FaultyBus(Bus):
    """The test's NATS connection, with faults staged on the publishes of chosen signals."""

    def __init__(self, bus: Bus) -> None:
        super().__init__(bus.nc, bus.url)
        self.failing: set[str] = set()  # signal ids whose batches fail to publish (timeout)
        self.held: dict[str, asyncio.Event] = {}  # signal ids whose batches wait for an event

    async def publish(
        self,
        subject: str,
        event: msgspec.Struct,
        msg_id: str | None = None,
        timeout_s: float = 2.0,
        headers: dict[str, str] | None = None,
        parent: otel_context.Context | None = None,
    ) -> PubAck:
        if isinstance(event, ExecBatch):
            if event.signal_id in self.failing:
                raise NatsTimeoutError
            gate = self.held.get(event.signal_id)
            if gate is not None:
                await gate.wait()
        return await super().publish(subject, event, msg_id, timeout_s, headers, parent)


@dataclass
class Rig:
    bus: Bus
    faulty: FaultyBus
    clock: FakeClock
    subs: KvMirror[SubscriptionRecord]
    accounts: KvMirror[AccountRecord]
    running: list[SignalConsumer | ConsumerLoop] = field(default_factory=list)

    def planner(self) -> Planner:
        return Planner(
            bus=self.faulty,
            clock=self.clock,
            book=ContractBook.load(),
            subscriptions=self.subs,
            accounts=self.accounts,
            shards=4,
            batch_size=25,
        )

    async def start(self) -> SignalConsumer:
        """A planner consuming SIGNALS as an executor replica does."""
        consumer = SignalConsumer(self.faulty, self.planner(), POLICY)
        await consumer.start()
        self.running.append(consumer)
        return consumer

    async def start_delays(self, delayed: DelayedSignals | None = None) -> DelayedSignals:
        """The consumer of parked signals, as an executor replica runs it."""
        delayed = delayed or DelayedSignals(self.bus, self.clock, recheck_s=0.05)
        loop = await self.bus.consume(
            delayed_consumer_spec(ack_wait_s=3),
            delayed.handle,
            batch=16,
            concurrency=16,
            double_ack=True,
        )
        self.running.append(loop)
        return delayed

    async def stop_all(self) -> None:
        for running in self.running:
            await running.stop()
        self.running.clear()

    async def send(self, strategy: str, signal: Signal, name: str) -> SignalReceived:
        """Publish a signal to SIGNALS as ingest does."""
        now = self.clock.time_ns()
        event = SignalReceived(
            event_id=ids.new_event_id(),
            ts_event=now,
            ts_init=now,
            signal_id=ids.signal_id_from(strategy, name.encode()),
            strategy_id=strategy,
            signal=signal,
        )
        await self.bus.publish(subjects.signals_subject(strategy), event, msg_id=event.signal_id)
        return event

    async def planned(self, strategy: str, signal_id: str | None = None) -> list[SignalPlanned]:
        """Verdicts stored for a strategy (of one signal if given), in stream order."""
        stored = await _events(self.bus, subjects.ORDERS.name, subjects.planned_subject(strategy))
        return [
            e for e in stored if isinstance(e, SignalPlanned) and signal_id in (None, e.signal_id)
        ]

    async def batches(self, signal_id: str) -> list[ExecBatch]:
        """Batches stored for one signal."""
        return [
            e
            for e in await _events(self.bus, subjects.EXEC.name, "exec.>")
            if isinstance(e, ExecBatch) and e.signal_id == signal_id
        ]


async def _events(bus: Bus, stream: str, subject: str) -> list[AnyEvent]:
    """Every event stored on ``subject`` in ``stream``, in stream order."""
    found: list[AnyEvent] = []
    seq = 1
    while True:
        try:
            raw = await bus.js.get_msg(stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            return found
        found.append(decode_event(raw.data or b""))
        seq = (raw.seq or seq) + 1


@pytest_asyncio.fixture
async def rig(nats_url: str) -> AsyncIterator[Rig]:
    bus = await Bus.connect(nats_url, "planner-test")
    await bus.ensure_topology()
    accounts_kv = await bus.key_value(subjects.Buckets.ACCOUNTS)
    subs_kv = await bus.key_value(subjects.Buckets.SUBSCRIPTIONS)
    for n, account_id in enumerate(ACCOUNTS):
        record = AccountRecord(
            account_id=account_id, account_spec=f"DEMO{account_id}", login_id=f"l{n}", user_id=n
        )
        await accounts_kv.put(str(account_id), encode(record))
        for strategy in ("alpha", "beta"):
            sub = SubscriptionRecord(strategy_id=strategy, account_id=account_id)
            await subs_kv.put(f"{strategy}.{account_id}", encode(sub))
    subs = KvMirror(subs_kv, SubscriptionRecord)
    accounts = KvMirror(accounts_kv, AccountRecord)
    await subs.start()
    await accounts.start()
    rig = Rig(bus, FaultyBus(bus), FakeClock(), subs, accounts)
    try:
        yield rig
    finally:
        await rig.stop_all()
        await subs.stop()
        await accounts.stop()
        await bus.close()


def _planned(rig: Rig, signal: SignalReceived) -> Callable[[], Awaitable[list[SignalPlanned]]]:
    return lambda: rig.planned(signal.strategy_id, signal.signal_id)


def _buy(quantity: Decimal = Decimal(1)) -> Signal:
    return Signal(ticker="MESZ6", action="buy", quantity=quantity)


async def test_a_signal_that_breaks_planning_does_not_stop_the_next_one(rig: Rig) -> None:
    await rig.start()
    # Found in the field: this quantity overflows the sizing arithmetic on every delivery.
    poison = await rig.send("alpha", _buy(Decimal("1e999999999")), "poison")
    valid = await rig.send("beta", _buy(), "valid")
    later = await rig.send("alpha", _buy(), "later")

    for signal in (valid, later):
        [verdict] = await eventually(_planned(rig, signal), what="planned")
        assert (verdict.intents, verdict.rejected) == (len(ACCOUNTS), "")
        batches = await rig.batches(signal.signal_id)
        assert sorted(i.account_id for b in batches for i in b.intents) == list(ACCOUNTS)

    [rejected] = await rig.planned("alpha", poison.signal_id)
    assert rejected.rejected.startswith("planning-error: Overflow")
    assert rejected.intents == 0
    assert await rig.batches(poison.signal_id) == []
    # In order within the strategy: the poison's verdict came before the later signal's.
    assert [p.signal_id for p in await rig.planned("alpha")] == [
        poison.signal_id,
        later.signal_id,
    ]


async def test_an_unreadable_message_is_rejected_and_its_strategy_goes_on(rig: Rig) -> None:
    await rig.start()
    await rig.bus.js.publish(
        subjects.signals_subject("alpha"), b"{not json", headers={"Nats-Msg-Id": "garbage-1"}
    )
    valid = await rig.send("alpha", _buy(), "valid")
    await eventually(lambda: rig.planned("alpha", valid.signal_id), what="valid planned")
    [garbage, planned] = await rig.planned("alpha")
    assert (garbage.signal_id, planned.signal_id) == ("garbage-1", valid.signal_id)
    assert garbage.rejected.startswith("undecodable")


async def test_a_publish_that_keeps_failing_is_dead_lettered_with_a_visible_verdict(
    rig: Rig,
) -> None:
    await rig.start()
    stuck = await rig.send("alpha", _buy(), "stuck")
    rig.faulty.failing.add(stuck.signal_id)
    nxt = await rig.send("alpha", _buy(), "next")

    [verdict] = await eventually(
        lambda: rig.planned("alpha", stuck.signal_id), timeout=20, what="stuck's verdict"
    )
    assert verdict.rejected.startswith("planning-failed: TimeoutError")
    dead = [
        e
        for e in await _events(rig.bus, subjects.CONTROL.name, subjects.DEAD_LETTERS)
        if isinstance(e, MessageTerminated)
    ]
    assert [(d.stream, d.consumer, d.subject) for d in dead] == [
        (subjects.SIGNALS.name, subjects.Consumers.PLANNER, subjects.signals_subject("alpha"))
    ]
    [planned] = await eventually(lambda: rig.planned("alpha", nxt.signal_id), what="next planned")
    assert planned.intents == len(ACCOUNTS)

    async def all_settled() -> bool:
        info = await rig.bus.js.consumer_info(subjects.SIGNALS.name, subjects.Consumers.PLANNER)
        return bool(info.num_ack_pending == 0 and info.num_pending == 0)

    await eventually(all_settled, what="both signals acknowledged")


async def test_a_blocked_strategy_delays_no_other_and_keeps_its_own_order(rig: Rig) -> None:
    # Two planner replicas share the consumer.
    await rig.start()
    await rig.start()
    gate = asyncio.Event()
    first = await rig.send("alpha", _buy(), "alpha-entry")
    rig.faulty.held[first.signal_id] = gate  # its batches hang until the gate opens
    second = await rig.send("alpha", Signal(ticker="MESZ6", action="exit"), "alpha-exit")
    other = await rig.send("beta", _buy(), "beta-entry")

    # Strategy beta is planned while alpha's head is blocked...
    await eventually(lambda: rig.planned("beta", other.signal_id), what="beta planned")

    # ...and alpha's exit, held by a replica, waits for its entry.
    async def both_held() -> bool:
        info = await rig.bus.js.consumer_info(subjects.SIGNALS.name, subjects.Consumers.PLANNER)
        return bool(info.num_ack_pending == 2)

    await eventually(both_held, what="alpha's two signals held by the planners")
    assert await rig.planned("alpha") == []
    gate.set()
    await eventually(lambda: rig.planned("alpha", second.signal_id), what="alpha's exit planned")
    assert [p.signal_id for p in await rig.planned("alpha")] == [
        first.signal_id,
        second.signal_id,
    ]
    # A signal's verdict is published after its batches, and the next signal of its strategy
    # starts only after that: the exit's batches follow the entry's.


def _delayed(seconds: int) -> Signal:
    return Signal(ticker="MESZ6", action="buy", quantity=Decimal(1), delay_s=Decimal(seconds))


async def _nothing_parked(rig: Rig) -> bool:
    info = await rig.bus.js.stream_info(subjects.DELAYED.name)
    return info.state.messages == 0


async def _assert_traded_once(rig: Rig, signal: SignalReceived) -> None:
    """One verdict with intents, one set of batches, one put-back on SIGNALS."""
    [verdict] = await rig.planned("alpha", signal.signal_id)
    assert (verdict.intents, verdict.rejected) == (len(ACCOUNTS), "")
    batches = await rig.batches(signal.signal_id)
    intents = [i.intent_id for b in batches for i in b.intents]
    assert sorted(intents) == sorted(ids.intent_id(signal.signal_id, a) for a in ACCOUNTS)
    stored = [
        e
        for e in await _events(rig.bus, subjects.SIGNALS.name, subjects.signals_subject("alpha"))
        if isinstance(e, SignalReceived) and e.signal_id == signal.signal_id
    ]
    assert len(stored) == 2  # as received, and put back once when due


async def test_a_delayed_signal_is_planned_when_due_and_not_before(rig: Rig) -> None:
    await rig.start()
    delays = await rig.start_delays()
    signal = await rig.send("alpha", _delayed(60), "delayed")
    undelayed = await rig.send("alpha", _buy(), "undelayed")

    # The later, undelayed signal of the same strategy does not wait for the parked one.
    await eventually(lambda: rig.planned("alpha", undelayed.signal_id), what="undelayed planned")
    await eventually(lambda: delays.checks >= 5, what="the parked signal looked at again")
    assert await rig.planned("alpha", signal.signal_id) == []
    assert await rig.batches(signal.signal_id) == []

    await rig.clock.advance(59)
    checks = delays.checks
    await eventually(lambda: delays.checks >= checks + 5, what="looked at after 59 s")
    assert await rig.planned("alpha", signal.signal_id) == []

    await rig.clock.advance(1)
    await eventually(lambda: rig.planned("alpha", signal.signal_id), what="planned when due")
    await eventually(lambda: _nothing_parked(rig), what="the parked copy removed")
    await _assert_traded_once(rig, signal)


async def test_a_restart_while_a_signal_is_parked_neither_loses_nor_doubles_it(rig: Rig) -> None:
    await rig.start()
    delays = await rig.start_delays()
    signal = await rig.send("alpha", _delayed(30), "delayed")
    await eventually(lambda: delays.checks >= 2, what="parked")

    await rig.stop_all()  # the executor goes away...
    await rig.clock.advance(30)  # ...and comes back after the signal became due
    await rig.start()
    await rig.start_delays()
    await eventually(lambda: rig.planned("alpha", signal.signal_id), what="planned after restart")
    await eventually(lambda: _nothing_parked(rig), what="the parked copy removed")
    await _assert_traded_once(rig, signal)


class LostAck(DelayedSignals):
    """Puts a due signal back, then fails before acknowledging it (once), as a crash would."""

    failed = False

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        await super().handle(event, msg)
        if not self.failed:
            self.failed = True
            raise RuntimeError("crashed after the put-back, before the ack")


async def test_a_signal_put_back_twice_is_planned_once(rig: Rig) -> None:
    await rig.start()
    delays = await rig.start_delays(LostAck(rig.bus, rig.clock, recheck_s=0.05))
    signal = await rig.send("alpha", _delayed(5), "delayed")
    await eventually(lambda: delays.checks >= 1, what="parked")
    await rig.clock.advance(5)
    await eventually(lambda: rig.planned("alpha", signal.signal_id), what="planned")
    await eventually(lambda: _nothing_parked(rig), what="the parked copy removed")
    assert isinstance(delays, LostAck)
    assert delays.failed
    assert delays.checks >= 2  # it was put back a second time
    await _assert_traded_once(rig, signal)


async def test_a_put_back_signal_is_planned_even_by_a_replica_whose_clock_is_behind(
    rig: Rig,
) -> None:
    await rig.start_delays()
    signal = await rig.send("alpha", _delayed(10), "delayed")
    await rig.clock.advance(10)
    # This replica's clock is 10 s behind the one that put the signal back.
    behind = Rig(
        rig.bus, rig.faulty, FakeClock(rig.clock.time_ns() - 10_000_000_000), rig.subs, rig.accounts
    )
    consumer = SignalConsumer(rig.faulty, behind.planner(), POLICY)
    await consumer.start()
    rig.running.append(consumer)
    await eventually(lambda: rig.planned("alpha", signal.signal_id), what="planned")
    await eventually(lambda: _nothing_parked(rig), what="the parked copy removed")
    await _assert_traded_once(rig, signal)


async def test_a_delay_out_of_range_is_rejected_at_once(rig: Rig) -> None:
    await rig.start()
    await rig.start_delays()
    signal = await rig.send("alpha", _delayed(86_400), "a day")
    [verdict] = await eventually(_planned(rig, signal), what="rejected")
    assert verdict.rejected.startswith("planning-error: ValueError: delay 86400 s is outside")
    assert await rig.batches(signal.signal_id) == []
    assert await _nothing_parked(rig)


async def test_signals_acknowledged_before_cursors_existed_do_not_hold_up_their_strategy(
    rig: Rig,
) -> None:
    # An executor of the previous version planned (and acknowledged) this one.
    old = await rig.send("alpha", _buy(), "planned by the previous version")
    consumer = SignalConsumer(rig.faulty, rig.planner(), POLICY)
    await rig.bus.ensure_consumer(consumer.spec)
    sub = await rig.bus.js.pull_subscribe_bind(
        durable=subjects.Consumers.PLANNER, stream=subjects.SIGNALS.name
    )
    [msg] = await sub.fetch(1, timeout=5)
    await msg.ack_sync()
    await sub.unsubscribe()

    await rig.start()
    new = await rig.send("alpha", _buy(), "after the upgrade")
    await eventually(_planned(rig, new), what="the new signal planned")
    assert await rig.planned("alpha", old.signal_id) == []  # not planned a second time


async def test_intents_carry_their_signals_stream_sequence_for_per_account_order(
    rig: Rig,
) -> None:
    # ADR-0051: workers order an account's intents by the SIGNALS sequence of their signal.
    await rig.start()
    entry = await rig.send("alpha", _buy(), "seq-entry")
    exit_ = await rig.send("alpha", Signal(ticker="MESZ6", action="exit"), "seq-exit")
    await eventually(_planned(rig, exit_), what="exit planned")
    seqs = []
    for signal in (entry, exit_):
        intents = [i for b in await rig.batches(signal.signal_id) for i in b.intents]
        assert len(intents) == len(ACCOUNTS)
        [seq] = {i.signal_seq for i in intents}
        assert seq > 0
        raw = await rig.bus.js.get_msg(subjects.SIGNALS.name, seq=seq)
        stored = decode_event(raw.data or b"")
        assert isinstance(stored, SignalReceived)
        assert stored.signal_id == signal.signal_id
        seqs.append(seq)
    assert seqs[0] < seqs[1]


async def test_a_planning_failure_after_a_batch_went_out_is_retried_never_rejected(
    rig: Rig,
) -> None:
    """ADR-0165: batches are published as they are planned, so a planner failure can come
    after the first one is out; the signal must then not be recorded as rejected (its first
    account trades), it is retried and, failing still, dead-lettered as ``planning-failed``."""
    subs_kv = await rig.bus.key_value(subjects.Buckets.SUBSCRIPTIONS)
    breaks = SubscriptionRecord(
        strategy_id="alpha", account_id=ACCOUNTS[1], multiplier=Decimal("1e999999999")
    )
    await subs_kv.put(f"alpha.{ACCOUNTS[1]}", encode(breaks))
    await eventually(
        lambda: _multiplier(rig, ACCOUNTS[1]) == breaks.multiplier, what="mirror updated"
    )
    planner = Planner(
        bus=rig.faulty,
        clock=rig.clock,
        book=ContractBook.load(),
        subscriptions=rig.subs,
        accounts=rig.accounts,
        shards=4,
        batch_size=1,  # the first account's batch is complete before the second is sized
    )
    signal = await rig.send("alpha", _buy(), "half")

    with pytest.raises(ArithmeticError):
        await planner.settle(signal)

    [batch] = await rig.batches(signal.signal_id)
    assert [i.account_id for i in batch.intents] == [ACCOUNTS[0]]
    assert await rig.planned("alpha", signal.signal_id) == []


def _multiplier(rig: Rig, account_id: int) -> Decimal | None:
    record = rig.subs.get(f"alpha.{account_id}")
    return record.multiplier if record is not None else None
