"""The JetStream bus against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus, ConsumerSpec
from phalanx_common.codec import decode_event
from phalanx_common.errors import DependencyUnavailable, Poison, Retry
from phalanx_common.events import AnyEvent, MessageTerminated, Signal, SignalReceived
from phalanx_testing.servers import free_port
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


def _signal_event(n: int) -> SignalReceived:
    return SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=n,
        ts_init=n,
        signal_id=f"s{n}",
        strategy_id="strat",
        signal=Signal(ticker="MNQZ6", action="buy"),
    )


async def test_connect_to_an_unreachable_server_names_nats_and_the_address() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(DependencyUnavailable, match=f"cannot reach NATS at {url}"):
        await Bus.connect(url, "test", connect_timeout_s=0.5)


async def test_a_comma_separated_url_list_connects_to_a_live_server_of_the_list(
    nats_url: str,
) -> None:
    # PHALANX_NATS_URL names every node of a cluster; any order, spaces allowed, one node down.
    dead = f"nats://127.0.0.1:{free_port()}"
    for listed in (f"{dead},{nats_url}", f"{nats_url} , {dead}"):
        bus = await Bus.connect(listed, "test", connect_timeout_s=0.5)
        try:
            await bus.ensure_topology()
            ack = await bus.publish(subjects.signals_subject("strat"), _signal_event(1))
            assert ack.stream == subjects.SIGNALS.name
            assert bus.nc.connected_url is not None
            assert f"{bus.nc.connected_url.hostname}:{bus.nc.connected_url.port}" in nats_url
        finally:
            await bus.close()


async def test_a_url_list_of_unreachable_servers_names_every_address() -> None:
    urls = [f"nats://127.0.0.1:{free_port()}" for _ in range(2)]
    with pytest.raises(DependencyUnavailable) as raised:
        await Bus.connect(",".join(urls), "test", connect_timeout_s=0.5)
    assert all(url in str(raised.value) for url in urls)


async def test_ensure_topology_is_idempotent_and_declares_every_stream(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        await bus.ensure_topology()
        names = {info.config.name for info in await bus.js.streams_info()}
        assert {s.name for s in subjects.ALL_STREAMS} <= names
        assert {f"KV_{b.name}" for b in subjects.ALL_BUCKETS} <= names
    finally:
        await bus.close()


async def test_publishing_the_same_msg_id_twice_stores_one_message(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        event = _signal_event(1)
        first = await bus.publish(subjects.signals_subject("strat"), event, msg_id="sig-1")
        second = await bus.publish(subjects.signals_subject("strat"), event, msg_id="sig-1")
        assert first.duplicate is not True
        assert second.duplicate is True
        assert second.seq == first.seq
        info = await bus.js.stream_info(subjects.SIGNALS.name)
        assert info.state.messages == 1
    finally:
        await bus.close()


async def test_consumer_acks_retries_and_terminates_by_handler_outcome(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    await bus.ensure_topology()
    seen: list[tuple[str, int]] = []
    terminated: list[str] = []

    async def handler(event: AnyEvent, msg: Msg) -> None:
        assert isinstance(event, SignalReceived)
        delivered = msg.metadata.num_delivered
        seen.append((event.signal_id, delivered))
        if event.signal_id == "s2" and delivered == 1:
            raise Retry("not yet", delay_s=0.1)
        if event.signal_id == "s3":
            terminated.append(event.signal_id)
            raise Poison("cannot ever work")

    spec = ConsumerSpec(subjects.SIGNALS.name, "test-consumer", ack_wait_s=5)
    loop = await bus.consume(spec, handler)
    try:
        for n in (1, 2, 3):
            await bus.publish(subjects.signals_subject("strat"), _signal_event(n))
        await eventually(lambda: ("s2", 2) in seen, what="s2 redelivered after Retry")
        await eventually(lambda: terminated == ["s3"])
        await asyncio.sleep(0.3)
        info = await bus.js.consumer_info(subjects.SIGNALS.name, "test-consumer")
        assert info.num_ack_pending == 0
        assert info.num_pending == 0
        assert [s for s in seen if s[0] == "s1"] == [("s1", 1)]
        assert [s for s in seen if s[0] == "s3"] == [("s3", 1)]
    finally:
        await loop.stop()
        await bus.close()


async def test_undecodable_message_is_terminated_not_redelivered(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    await bus.ensure_topology()
    calls: list[AnyEvent] = []

    async def handler(event: AnyEvent, msg: Msg) -> None:
        calls.append(event)

    loop = await bus.consume(ConsumerSpec(subjects.SIGNALS.name, "c"), handler)
    try:
        await bus.js.publish(subjects.signals_subject("strat"), b"{not json")
        await bus.publish(subjects.signals_subject("strat"), _signal_event(7))
        await eventually(lambda: len(calls) == 1)

        async def settled() -> bool:
            info = await bus.js.consumer_info(subjects.SIGNALS.name, "c")
            return (info.num_ack_pending, info.num_pending, info.num_redelivered) == (0, 0, 0)

        await eventually(settled, what="both messages settled without redelivery")

        async def recorded() -> MessageTerminated | None:
            try:
                raw = await bus.js.get_last_msg(subjects.CONTROL.name, subjects.DEAD_LETTERS)
            except NotFoundError:
                return None
            event = decode_event(raw.data or b"")
            return event if isinstance(event, MessageTerminated) else None

        dead = await eventually(recorded, what="the poison message recorded as an event")
        assert dead is not None
        assert (dead.stream, dead.consumer, dead.stream_seq) == (subjects.SIGNALS.name, "c", 1)
        assert dead.reason.startswith("undecodable")
    finally:
        await loop.stop()
        await bus.close()


async def test_an_unconfirmed_ack_is_logged_and_contained(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # With double acks, the ack waits for the consumer's leader to confirm it; during a leader
    # failover (or once the consumer is gone, as staged here) that ack fails. The handler's
    # work is done and a redelivery finds it so: the loop logs the failure, naming the
    # message, instead of letting the error escape into a task nobody awaits (asyncio's
    # "Task exception was never retrieved", without the subject).
    bus = await Bus.connect(nats_url, "test")
    await bus.ensure_topology()
    handled: list[str] = []

    async def handler(event: AnyEvent, msg: Msg) -> None:
        assert isinstance(event, SignalReceived)
        await bus.js.delete_consumer(subjects.SIGNALS.name, "acks")  # nobody confirms the ack
        handled.append(event.signal_id)

    spec = ConsumerSpec(subjects.SIGNALS.name, "acks", ack_wait_s=5)
    loop = await bus.consume(spec, handler, double_ack=True)
    try:
        await bus.publish(subjects.signals_subject("strat"), _signal_event(1))
        await eventually(lambda: handled == ["s1"], what="handled")
        await eventually(
            lambda: any("ack of signals.strat failed" in r.getMessage() for r in caplog.records),
            what="the failed ack logged with its subject",
        )
    finally:
        await loop.stop()
        await bus.close()
