"""Settling messages (the one helper the bus's consumer loop and ingest's replayer share),
against a real nats-server."""

from __future__ import annotations

import logging

import pytest
from nats.js import JetStreamContext

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus, ConsumerSpec
from phalanx_common.codec import decode_event
from phalanx_common.events import MessageTerminated, Signal, SignalReceived
from phalanx_common.settling import keep_alive_interval, settle, terminate
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

DURABLE = "settling"


def _signal_event(n: int) -> SignalReceived:
    return SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=n,
        ts_init=n,
        signal_id=f"s{n}",
        strategy_id="strat",
        signal=Signal(ticker="MNQZ6", action="buy"),
    )


async def _one_message(bus: Bus, ack_wait_s: float = 30.0) -> JetStreamContext.PullSubscription:
    """A pull subscription on SIGNALS holding one published signal."""
    await bus.ensure_topology()
    spec = ConsumerSpec(subjects.SIGNALS.name, DURABLE, ack_wait_s=ack_wait_s, max_deliver=5)
    await bus.ensure_consumer(spec)
    await bus.publish(subjects.signals_subject("strat"), _signal_event(1))
    return await bus.js.pull_subscribe_bind(durable=DURABLE, stream=subjects.SIGNALS.name)


async def _dead_letters(bus: Bus) -> list[MessageTerminated]:
    info = await bus.js.stream_info(subjects.CONTROL.name)
    found: list[MessageTerminated] = []
    if info.state.messages == 0:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await bus.js.get_msg(subjects.CONTROL.name, seq)
        if raw.subject != subjects.DEAD_LETTERS:
            continue
        event = decode_event(raw.data or b"")
        if isinstance(event, MessageTerminated):
            found.append(event)
    return found


async def test_terminate_stops_redelivery_and_records_the_message_once(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        sub = await _one_message(bus)
        [msg] = await sub.fetch(1, timeout=5)
        reason = "poison: " + "x" * 600
        await terminate(msg, reason, stream=subjects.SIGNALS.name, consumer=DURABLE, bus=bus)
        # the same message terminated again (a second replica, a retried handler) is stored once
        await terminate(msg, reason, stream=subjects.SIGNALS.name, consumer=DURABLE, bus=bus)

        async def settled() -> bool:  # a term is not confirmed by the server: wait to see it
            info = await bus.js.consumer_info(subjects.SIGNALS.name, DURABLE)
            return (info.num_ack_pending, info.num_pending, info.num_redelivered) == (0, 0, 0)

        await eventually(settled, what="the message terminated")
        [dead] = await _dead_letters(bus)
        assert (dead.stream, dead.consumer, dead.subject, dead.stream_seq) == (
            subjects.SIGNALS.name,
            DURABLE,
            subjects.signals_subject("strat"),
            1,
        )
        assert dead.reason == reason[:500]
    finally:
        await bus.close()


async def test_terminate_without_a_bus_only_terms_the_message(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        sub = await _one_message(bus)
        [msg] = await sub.fetch(1, timeout=5)
        await terminate(msg, "poison", stream=subjects.SIGNALS.name, consumer=DURABLE, bus=None)

        async def settled() -> bool:  # a term is not confirmed by the server: wait to see it
            info = await bus.js.consumer_info(subjects.SIGNALS.name, DURABLE)
            return (info.num_ack_pending, info.num_pending, info.num_redelivered) == (0, 0, 0)

        await eventually(settled, what="the message terminated")
        assert await _dead_letters(bus) == []
    finally:
        await bus.close()


async def test_a_settle_that_fails_is_logged_with_the_subject_not_raised(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        sub = await _one_message(bus)
        [msg] = await sub.fetch(1, timeout=5)

        async def lost_leader() -> None:  # the fault: no consumer leader answers the ack
            raise TimeoutError("no consumer leader")

        with caplog.at_level(logging.WARNING, logger="phalanx_common.settling"):
            await settle(msg, "ack", lost_leader())
        assert any(
            "ack of " + subjects.signals_subject("strat") in r.getMessage() for r in caplog.records
        )
        info = await bus.js.consumer_info(subjects.SIGNALS.name, DURABLE)
        assert info.num_ack_pending == 1  # not acknowledged: it comes back after the ack wait
        await settle(msg, "ack", msg.ack_sync(timeout=5))
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("ack_wait_s", "floor_s", "interval_s"),
    [(30.0, 1.0, 10.0), (30.0, 0.5, 10.0), (2.0, 1.0, 1.0), (1.2, 0.5, 0.5), (3.0, 0.5, 1.0)],
)
def test_in_progress_goes_out_thrice_per_ack_wait_but_not_more_often_than_the_floor(
    ack_wait_s: float, floor_s: float, interval_s: float
) -> None:
    assert keep_alive_interval(ack_wait_s, floor_s) == pytest.approx(interval_s)
