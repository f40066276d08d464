"""Deliberate re-runs (ADR-0090): a request on ``signals-replay.<strategy>`` becomes a new
signal with a new id, marked as a re-run; a request that cannot be carried out is refused with a
recorded reason. Requests are published as ``nats req`` / ``nats pub --jetstream`` would: an
empty body and headers, acknowledged by the REPLAYS stream."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import MessageTerminated, SignalReceived
from phalanx_common.replay import REPLAY_BY, REPLAY_OF, REPLAY_REASON, rerun_signal_id
from phalanx_ingest.service import build_ingest
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

from .conftest import ingest_settings

pytestmark = pytest.mark.integration


async def request_rerun(
    bus: Bus, strategy_id: str, original_id: str, request_id: str | None, **notes: str
) -> bool:
    """Publish a re-run request; ``True`` if the stream stored it (``False``: a duplicate)."""
    headers = {REPLAY_OF: original_id}
    if request_id is not None:
        headers[MSG_ID] = request_id
    if "by" in notes:
        headers[REPLAY_BY] = notes["by"]
    if "reason" in notes:
        headers[REPLAY_REASON] = notes["reason"]
    ack = await bus.js.publish(subjects.replay_subject(strategy_id), b"", headers=headers)
    assert ack.stream == subjects.REPLAYS.name
    return ack.duplicate is not True


async def stored_signals(bus: Bus, strategy_id: str) -> list[SignalReceived]:
    """Every SignalReceived on the strategy's SIGNALS subject, in stream order."""
    subject = subjects.signals_subject(strategy_id)
    try:
        last = await bus.js.get_last_msg(subjects.SIGNALS.name, subject)
    except NotFoundError:
        return []
    sub = await bus.js.subscribe(
        subject, stream=subjects.SIGNALS.name, ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
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


async def refusals(bus: Bus) -> list[MessageTerminated]:
    """Re-run requests terminated so far (from ``control.terminated``)."""
    sub = await bus.js.subscribe(
        subjects.DEAD_LETTERS, stream=subjects.CONTROL.name, ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )  # fmt: skip
    found: list[MessageTerminated] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except TimeoutError:
                return found
            event = decode_event(msg.data)
            if isinstance(event, MessageTerminated) and event.stream == subjects.REPLAYS.name:
                found.append(event)
    finally:
        await sub.unsubscribe()


async def send(client: httpx.AsyncClient, hook: str, body: dict[str, Any]) -> str:
    response = await client.post(hook, json=body)
    assert response.status_code == 200, response.text
    signal_id: str = response.json()["id"]
    return signal_id


async def test_a_rerun_is_a_new_signal_marked_with_its_original_and_a_fresh_deadline(
    client: httpx.AsyncClient,
    bus: Bus,
    strategy: dict[str, Any],
    hook: str,
    admin_headers: dict[str, str],
) -> None:
    sid = strategy["strategy_id"]
    original_id = await send(
        client, hook,
        {"ticker": "MNQ1!", "action": "buy", "quantity": 2, "delay": 30, "id": "alert-1"},
    )  # fmt: skip
    (original,) = await eventually(lambda: stored_signals(bus, sid), what="the original stored")

    assert await request_rerun(bus, sid, original_id, "ticket-7", by="alice", reason="outage")

    async def two() -> list[SignalReceived] | None:
        events = await stored_signals(bus, sid)
        return events if len(events) == 2 else None

    stored = await eventually(two, what="the re-run stored")
    assert stored is not None
    _, rerun = stored
    assert rerun.signal_id == rerun_signal_id(sid, original_id, "ticket-7") != original_id
    assert (rerun.replay_of, rerun.replay_by, rerun.replay_reason) == (
        original_id, "alice", "outage"
    )  # fmt: skip
    assert original.replay_of == ""
    assert rerun.signal.ticker == "MNQ1!"
    assert rerun.signal.quantity == 2
    assert rerun.signal.delay_s is None  # the operator chose the moment
    assert rerun.contract == original.contract
    assert rerun.ts_event > original.ts_event
    # a fresh deadline: receipt of the re-run + the entry age (60 s), no delay
    assert rerun.not_after_ns == rerun.ts_event + 60 * 10**9
    assert original.not_after_ns == original.ts_event + 90 * 10**9

    async def linked() -> tuple[dict[str, Any], dict[str, Any]] | None:
        first = (await client.get(f"/admin/signals/{original_id}", headers=admin_headers)).json()
        second = await client.get(f"/admin/signals/{rerun.signal_id}", headers=admin_headers)
        if second.status_code != 200 or not first.get("replays"):
            return None
        return first, second.json()

    first, second = await eventually(linked, what="both directions in the signal log")
    assert first["replays"] == [rerun.signal_id]
    assert first["replay_of"] == ""
    assert second["replay_of"] == original_id
    assert (second["replay_by"], second["replay_reason"]) == ("alice", "outage")
    assert second["replays"] == []


async def test_a_retried_request_is_one_request_and_one_rerun(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    sid = strategy["strategy_id"]
    original_id = await send(client, hook, {"ticker": "MNQ1!", "action": "exit"})

    assert await request_rerun(bus, sid, original_id, "ticket-8")
    assert not await request_rerun(bus, sid, original_id, "ticket-8")  # the stream's dedupe
    assert await request_rerun(bus, sid, original_id, "ticket-9")  # another deliberate re-run

    async def three() -> list[SignalReceived] | None:
        events = await stored_signals(bus, sid)
        return events if len(events) == 3 else None

    events = await eventually(three, what="two re-runs stored")
    assert events is not None
    assert [e.replay_of for e in events] == ["", original_id, original_id]
    assert len({e.signal_id for e in events}) == 3


async def test_requests_that_cannot_be_carried_out_are_refused_with_the_reason(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    sid = strategy["strategy_id"]
    known = await send(client, hook, {"ticker": "MNQ1!", "action": "buy"})

    await request_rerun(bus, sid, "s" + "0" * 31, "ticket-1")  # no such signal
    await request_rerun(bus, sid, known, None)  # no request id: a retry could run it twice
    await request_rerun(bus, "no-such-strategy", known, "ticket-2")
    await bus.js.publish(subjects.replay_subject(sid), b"", headers={MSG_ID: "ticket-3"})

    async def four() -> list[MessageTerminated] | None:
        found = await refusals(bus)
        return found if len(found) == 4 else None

    found = await eventually(four, what="4 refusals")
    assert found is not None
    reasons = sorted(r.reason.split(":")[0] for r in found)
    assert reasons == [
        "replay-unknown-signal",
        "replay-unknown-strategy",
        "replay-without-original",
        "replay-without-request-id",
    ]
    assert [e.signal_id for e in await stored_signals(bus, sid)] == [known]


async def test_a_request_read_long_after_it_was_made_is_refused(
    nats_url: str, bus: Bus, tmp_path: Path
) -> None:
    # Ingest reads the request two hours after it was stored (a restored REPLAYS stream, or a
    # recreated consumer): it is refused, so an old request never re-runs by surprise.
    clock = FakeClock(time.time_ns() + 2 * 3600 * 10**9)
    service = await build_ingest(ingest_settings(nats_url, tmp_path / "outbox"), clock=clock)
    await service.start()
    try:
        await request_rerun(bus, "any-strategy", "s" + "1" * 31, "ticket-old")
        (refusal,) = await eventually(lambda: refusals(bus), what="the refusal")
    finally:
        await service.stop()

    assert refusal.reason.startswith("replay-request-expired")
