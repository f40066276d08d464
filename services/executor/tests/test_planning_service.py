"""The planner as a bus consumer, over a real nats-server: isolation, order and delay.

Signals are published to SIGNALS as ingest does (``Nats-Msg-Id`` = signal id); what the planner
made of them is read back from the EXEC and ORDERS streams.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus, ConsumerLoop, ConsumerSpec
from phalanx_common.clock import Clock
from phalanx_common.codec import decode_event, encode
from phalanx_common.events import ExecBatch, Signal, SignalPlanned, SignalReceived
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.contracts import ContractBook
from phalanx_executor.planning_service import Planner
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ACCOUNTS = (5001, 5002)


@dataclass
class Rig:
    bus: Bus
    clock: Clock
    subs: KvMirror[SubscriptionRecord]
    accounts: KvMirror[AccountRecord]

    def planner(self) -> Planner:
        return Planner(
            bus=self.bus,
            clock=self.clock,
            book=ContractBook.load(),
            subscriptions=self.subs,
            accounts=self.accounts,
            shards=4,
            batch_size=25,
        )

    async def start(self) -> ConsumerLoop:
        """A planner consuming SIGNALS as the executor wires it."""
        return await self.bus.consume(
            ConsumerSpec(
                subjects.SIGNALS.name,
                subjects.Consumers.PLANNER,
                filter_subject=subjects.SIGNALS_ALL,
                max_ack_pending=1,
            ),
            self.planner().handle,
            batch=1,
            concurrency=1,
            double_ack=True,
        )

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

    async def planned(self, strategy: str) -> list[SignalPlanned]:
        return [
            e
            for e in await _events(
                self.bus, subjects.ORDERS.name, subjects.planned_subject(strategy)
            )
            if isinstance(e, SignalPlanned)
        ]

    async def batches(self) -> list[ExecBatch]:
        return [
            e
            for e in await _events(self.bus, subjects.EXEC.name, "exec.>")
            if isinstance(e, ExecBatch)
        ]


async def _events(bus: Bus, stream: str, subject: str) -> list[object]:
    """Every event stored on ``subject`` in ``stream``, in stream order."""
    found: list[object] = []
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
    try:
        yield Rig(bus, FakeClock(), subs, accounts)
    finally:
        await subs.stop()
        await accounts.stop()
        await bus.close()


def _buy(quantity: Decimal = Decimal(1)) -> Signal:
    return Signal(ticker="MESZ6", action="buy", quantity=quantity)


async def test_a_signal_that_breaks_planning_does_not_stop_the_next_one(rig: Rig) -> None:
    loop = await rig.start()
    try:
        # Found in the field: this quantity overflows the sizing arithmetic on every delivery.
        poison = await rig.send("alpha", _buy(Decimal("1e999999999")), "poison")
        valid = await rig.send("beta", _buy(), "valid")

        async def valid_planned() -> list[SignalPlanned]:
            return [p for p in await rig.planned("beta") if p.signal_id == valid.signal_id]

        [verdict] = await eventually(valid_planned, what="the valid signal planned")
        assert (verdict.intents, verdict.rejected) == (len(ACCOUNTS), "")
        batches = [b for b in await rig.batches() if b.signal_id == valid.signal_id]
        assert sorted(i.account_id for b in batches for i in b.intents) == list(ACCOUNTS)

        async def poison_verdict() -> list[SignalPlanned]:
            return [p for p in await rig.planned("alpha") if p.signal_id == poison.signal_id]

        [rejected] = await eventually(poison_verdict, what="the poison signal's verdict")
        assert rejected.rejected
        assert rejected.intents == 0
        assert not [b for b in await rig.batches() if b.signal_id == poison.signal_id]
    finally:
        with contextlib.suppress(Exception):
            await loop.stop()
