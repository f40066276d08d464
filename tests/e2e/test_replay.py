"""The replay runbook through every real service (ADR-0090): each operation of the README's
"Replay with the NATS CLI" done with the JetStream API the ``nats`` CLI uses, followed to the
orders at the simulator.

- ``nats stream get`` + ``nats pub`` of a stored signal back to ``signals.<strategy>`` (an
  accidental republish) trades nothing: with its ``Nats-Msg-Id`` the stream drops it; without,
  the planner makes the same batch ids (dropped by EXEC) and, once the deadline has passed,
  expires it.
- ``nats req signals-replay.<strategy> '' -H Phalanx-Replay-Of:<id> -H Nats-Msg-Id:<request>``
  re-runs the signal once more under a new id, marked as a re-run both ways.
- A window (``nats sub --stream SIGNALS --since``) re-run in a loop trades each signal once more,
  even when the loop is run twice and the requests are delivered again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import IntentExpired, MessageTerminated, SignalReceived
from phalanx_common.replay import REPLAY_BY, REPLAY_OF, REPLAY_REASON, rerun_signal_id
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]


class Desk:
    """An operator's view: the seeded strategy, the venue, the signal log and the streams."""

    def __init__(
        self, system: RunningSystem, seeded: SeededStrategy, http: httpx.AsyncClient, bus: Bus
    ) -> None:
        self.system = system
        self.seeded = seeded
        self.http = http
        self.bus = bus
        self.js: JetStreamContext = bus.js
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
        self.strategy_id = seeded.strategy_id

    # -- the venue --------------------------------------------------------------------------

    def orders(self) -> list[str]:
        """The ``clOrdId`` of every order at the venue on the seeded accounts ("" if none)."""
        books = self.system.sim.state.books
        return [
            record.new_command.command.clOrdId or ""
            for account in self.seeded.account_ids
            if account in books
            for record in books[account].orders.values()
        ]

    def positions(self) -> set[int]:
        books = self.system.sim.state.books
        return {
            sum(int(p.netPos) for p in books[a].positions.values()) if a in books else 0
            for a in self.seeded.account_ids
        }

    # -- the webhook and the signal log ----------------------------------------------------

    async def send(self, body: dict[str, Any]) -> str:
        resp = await self.http.post(self.seeded.webhook_url, json=body)
        assert resp.status_code == 200, resp.text
        signal_id: str = resp.json()["id"]
        return signal_id

    async def settled(self, signal_id: str) -> dict[str, Any]:
        """The signal log's entry once every account has its outcome."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"

        async def done() -> dict[str, Any] | None:
            resp = await self.http.get(url, headers=self.admin)
            if resp.status_code != 200:
                return None
            entry: dict[str, Any] = resp.json()
            decided = [a for a in entry["accounts"] if a["outcome"] != "pending"]
            if entry["status"] == "done" and len(decided) == len(self.seeded.account_ids):
                return entry
            return None

        entry = await eventually(done, timeout=30, what=f"every outcome of {signal_id}")
        assert entry is not None
        return dict(entry)

    async def trade(self, body: dict[str, Any], expect: int) -> str:
        signal_id = await self.send(body)
        entry = await self.settled(signal_id)
        assert entry["counts"]["placed"] == len(self.seeded.account_ids), entry
        await eventually(lambda: self.positions() == {expect}, what=f"every account at {expect}")
        return signal_id

    # -- the streams, as the CLI sees them -------------------------------------------------

    async def last_seq(self, stream: str) -> int:
        info = await self.js.stream_info(stream)
        return int(info.state.last_seq)

    async def signals(self, since: dt.datetime | None = None) -> list[SignalReceived]:
        """The strategy's stored signals (``nats sub --stream SIGNALS signals.<s> --all`` or
        ``--since``), in stream order."""
        subject = subjects.signals_subject(self.strategy_id)
        try:
            last = await self.js.get_last_msg(subjects.SIGNALS.name, subject)
        except NotFoundError:
            return []
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
            if since is not None
            else None
        )
        sub = await self.js.subscribe(
            subject, stream=subjects.SIGNALS.name, ordered_consumer=True, config=config,
            deliver_policy=None if since is not None else DeliverPolicy.ALL,
        )  # fmt: skip
        events: list[SignalReceived] = []
        try:
            while True:
                msg = await sub.next_msg(timeout=5)
                event = decode_event(msg.data)
                assert isinstance(event, SignalReceived)
                events.append(event)
                if msg.metadata.sequence.stream >= (last.seq or 0):
                    return events
        finally:
            await sub.unsubscribe()

    async def rerun(self, original_id: str, request_id: str, **notes: str) -> bool:
        """``nats req signals-replay.<s> '' -H Phalanx-Replay-Of:<id> -H Nats-Msg-Id:<req>``;
        ``True`` if stored, ``False`` if the stream already had this request."""
        headers = {REPLAY_OF: original_id, MSG_ID: request_id}
        if "by" in notes:
            headers[REPLAY_BY] = notes["by"]
        if "reason" in notes:
            headers[REPLAY_REASON] = notes["reason"]
        ack = await self.js.publish(subjects.replay_subject(self.strategy_id), b"", headers=headers)
        return ack.duplicate is not True

    async def planner_read(self, seq: int) -> None:
        """Wait until the planner settled and acknowledged every SIGNALS message up to ``seq``."""

        async def done() -> bool:
            info = await self.js.consumer_info(subjects.SIGNALS.name, subjects.Consumers.PLANNER)
            return (
                (info.ack_floor.stream_seq or 0) >= seq
                and not info.num_ack_pending
                and not info.num_pending
            )

        await eventually(done, timeout=30, what=f"planner past SIGNALS #{seq}")

    async def replayer_read(self) -> None:
        """Wait until ingest carried out (acknowledged) every request in REPLAYS."""
        last = await self.last_seq(subjects.REPLAYS.name)

        async def done() -> bool:
            info = await self.js.consumer_info(subjects.REPLAYS.name, subjects.Consumers.REPLAYER)
            return (
                (info.ack_floor.stream_seq or 0) >= last
                and not info.num_ack_pending
                and not info.num_pending
            )

        await eventually(done, timeout=30, what="every re-run request carried out")

    async def orders_events(self, kind: type[Any], signal_id: str) -> list[Any]:
        """Events of ``kind`` for ``signal_id`` on ORDERS."""
        sub = await self.js.subscribe(
            "orders.>", stream=subjects.ORDERS.name, ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )  # fmt: skip
        found: list[Any] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except TimeoutError:
                    return found
                event = decode_event(msg.data)
                if isinstance(event, kind) and getattr(event, "signal_id", "") == signal_id:
                    found.append(event)
        finally:
            await sub.unsubscribe()


@pytest.fixture
async def desk(system: RunningSystem) -> Any:
    seeded = await seed(system.endpoints, logins=2, accounts_per_login=2)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 2, what="executor connected both logins")
    bus = await Bus.connect(system.nats_url, "operator")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(
                system.endpoints.sim + "/admin/prices",
                json={"symbol": front_month(), "price": 21000},
            )
            resp.raise_for_status()
            yield Desk(system, seeded, http, bus)
    finally:
        await bus.close()


def buy(signal_id: str) -> dict[str, Any]:
    return {"ticker": "MNQ1!", "action": "buy", "quantity": 1, "id": signal_id}


def exit_(signal_id: str) -> dict[str, Any]:
    return {"ticker": "MNQ1!", "action": "exit", "id": signal_id}


async def test_an_accidental_republish_of_a_stored_signal_trades_nothing(desk: Desk) -> None:
    signal_id = await desk.trade(buy("entry-1"), expect=1)
    orders = desk.orders()
    intents = await desk.last_seq("KV_intents")
    batches = await desk.last_seq(subjects.EXEC.name)
    # `nats stream get SIGNALS <seq>`: the stored message, headers and body
    stored = await desk.js.get_last_msg(
        subjects.SIGNALS.name, subjects.signals_subject(desk.strategy_id)
    )
    assert stored.headers is not None
    assert stored.headers[MSG_ID] == signal_id
    assert stored.data is not None

    # `nats pub signals.<s> '<body>' -H Nats-Msg-Id:<id>`: dropped by the stream itself
    again = await desk.js.publish(stored.subject or "", stored.data, headers=stored.headers)
    assert again.duplicate is True
    # `nats pub signals.<s> '<body>'` without headers: stored, planned, and still nothing new
    copy = await desk.js.publish(stored.subject or "", stored.data)
    assert copy.duplicate is not True
    await desk.planner_read(copy.seq)

    assert await desk.last_seq(subjects.EXEC.name) == batches  # same batch ids: dropped
    assert await desk.last_seq("KV_intents") == intents  # no intent claimed or moved
    assert desk.orders() == orders
    assert desk.positions() == {1}
    assert (await desk.settled(signal_id))["counts"]["placed"] == len(desk.seeded.account_ids)


async def test_a_republish_after_the_deadline_expires_on_every_account(desk: Desk) -> None:
    resp = await desk.http.patch(
        f"{desk.system.endpoints.ingest}/admin/strategies/{desk.strategy_id}",
        json={"max_entry_age_s": 1},
        headers=desk.admin,
    )
    resp.raise_for_status()
    signal_id = await desk.trade(buy("entry-2"), expect=1)
    stored = await desk.js.get_last_msg(
        subjects.SIGNALS.name, subjects.signals_subject(desk.strategy_id)
    )
    event = decode_event(stored.data or b"")
    assert isinstance(event, SignalReceived)
    past_deadline_s = (event.not_after_ns - time.time_ns()) / 1e9 + 0.1
    await asyncio.sleep(max(0.0, past_deadline_s))  # the copy is planned after the deadline
    orders = desk.orders()

    copy = await desk.js.publish(stored.subject or "", stored.data or b"")
    await desk.planner_read(copy.seq)

    # the freshness rule, not the dedupe, stopped it: every account expired at planning
    expired = await eventually(
        lambda: desk.orders_events(IntentExpired, signal_id), what="expired at planning"
    )
    assert {e.account_id for e in expired} == set(desk.seeded.account_ids)
    assert {e.stage for e in expired} == {"planning"}
    assert desk.orders() == orders
    assert desk.positions() == {1}


async def test_a_deliberate_rerun_trades_once_more_under_a_new_id_marked_both_ways(
    desk: Desk,
) -> None:
    original_id = await desk.trade(buy("entry-3"), expect=1)
    await desk.trade(exit_("exit-3"), expect=0)
    before = desk.orders()

    assert await desk.rerun(original_id, "ticket-42", by="alice", reason="venue outage")

    rerun_id = rerun_signal_id(desk.strategy_id, original_id, "ticket-42")
    entry = await desk.settled(rerun_id)
    await eventually(lambda: desk.positions() == {1}, what="every account long again")
    new_orders = [o for o in desk.orders() if o not in before]
    assert sorted(new_orders) == sorted(f"{rerun_id}-{a}" for a in desk.seeded.account_ids)
    assert entry["counts"]["placed"] == len(desk.seeded.account_ids)
    assert entry["replay_of"] == original_id
    assert (entry["replay_by"], entry["replay_reason"]) == ("alice", "venue outage")
    original = await desk.settled(original_id)
    assert original["replays"] == [rerun_id]
    stored = await desk.signals()
    assert [(e.signal_id, e.replay_of) for e in stored][-1] == (rerun_id, original_id)


async def test_a_rerun_of_an_unknown_signal_is_refused_and_trades_nothing(desk: Desk) -> None:
    await desk.trade(buy("entry-4"), expect=1)
    signals = await desk.last_seq(subjects.SIGNALS.name)
    orders = desk.orders()

    await desk.rerun("s" + "f" * 31, "ticket-43")
    await desk.replayer_read()

    terminated = await desk.js.get_last_msg(subjects.CONTROL.name, subjects.DEAD_LETTERS)
    refusal = decode_event(terminated.data or b"")
    assert isinstance(refusal, MessageTerminated)
    assert refusal.stream == subjects.REPLAYS.name
    assert refusal.reason.startswith("replay-unknown-signal: no signal " + "s" + "f" * 31)
    assert await desk.last_seq(subjects.SIGNALS.name) == signals
    assert desk.orders() == orders


async def test_a_window_rerun_trades_each_signal_once_even_when_delivered_twice(
    desk: Desk,
) -> None:
    since = dt.datetime.now(dt.UTC)
    for n in range(2):
        await desk.trade(buy(f"w-entry-{n}"), expect=1)
        await desk.trade(exit_(f"w-exit-{n}"), expect=0)
    originals = desk.orders()
    window = [e.signal_id for e in await desk.signals(since=since) if not e.replay_of]
    assert len(window) == 4

    # the operator's loop, run twice: the second run's requests are all duplicates
    first = [await desk.rerun(sid, f"replay-ticket-44-{sid}") for sid in window]
    second = [await desk.rerun(sid, f"replay-ticket-44-{sid}") for sid in window]
    assert first == [True] * 4
    assert second == [False] * 4
    reruns = [rerun_signal_id(desk.strategy_id, s, f"replay-ticket-44-{s}") for s in window]
    for rerun_id in reruns:
        await desk.settled(rerun_id)
    await eventually(lambda: len(desk.orders()) == 2 * len(originals), what="each once more")
    assert desk.positions() == {0}  # buy, exit, buy, exit: in order
    signals = await desk.last_seq(subjects.SIGNALS.name)
    batches = await desk.last_seq(subjects.EXEC.name)

    # Every request delivered again (a recreated consumer, or REPLAYS restored from a backup)
    replayer = desk.system.ingest.replayer
    assert replayer is not None
    await replayer.stop()
    await desk.js.delete_consumer(subjects.REPLAYS.name, subjects.Consumers.REPLAYER)
    carried_out = replayer.rerun
    await replayer.start()
    await desk.replayer_read()

    assert replayer.rerun == carried_out + 4  # each request carried out again...
    assert await desk.last_seq(subjects.SIGNALS.name) == signals  # ...as the same re-run ids
    assert await desk.last_seq(subjects.EXEC.name) == batches
    assert len(desk.orders()) == 2 * len(originals)
    stored_reruns = [e.signal_id for e in await desk.signals() if e.replay_of]
    assert stored_reruns == reruns
