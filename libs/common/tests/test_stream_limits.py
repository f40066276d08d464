"""Stream limits (ADR-0087) as a real nats-server applies them."""

from __future__ import annotations

import dataclasses

import pytest
from nats.js.api import DiscardPolicy
from nats.js.errors import APIError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.events import Signal, SignalReceived

pytestmark = pytest.mark.integration


def _event(n: int) -> SignalReceived:
    return SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=n,
        ts_init=n,
        signal_id=f"s{n}",
        strategy_id="strat",
        signal=Signal(ticker="MNQZ6", action="buy"),
    )


def test_the_ledger_streams_keep_everything_and_the_rest_age_out() -> None:
    for spec in (subjects.ORDERS, subjects.FILLS):
        assert spec.max_age_s == 0
        assert spec.discard_new
    for spec in subjects.ALL_STREAMS:
        assert spec.max_bytes > 0, spec.name
        if spec not in (subjects.ORDERS, subjects.FILLS):
            # JetStream refuses a duplicate window longer than the age limit.
            assert spec.max_age_s >= spec.duplicate_window_s, spec.name
    # Replay (ADR-0087) needs signals well past the 24 h duplicate window.
    assert subjects.SIGNALS.max_age_s >= 7 * 24 * 3600


async def test_ensure_topology_applies_the_limits_also_to_existing_streams(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        # A stream created before the limits existed is brought to them.
        unlimited = dataclasses.replace(subjects.FILLS, max_bytes=-1, discard_new=False)
        await bus.ensure_stream(unlimited)
        await bus.ensure_topology(byte_limits=True)
        for spec in subjects.ALL_STREAMS:
            config = (await bus.js.stream_info(spec.name)).config
            assert config.max_bytes == spec.max_bytes, spec.name
            assert (config.max_age or 0) == spec.max_age_s, spec.name
            expected = DiscardPolicy.NEW if spec.discard_new else DiscardPolicy.OLD
            assert config.discard == expected, spec.name
    finally:
        await bus.close()


async def test_a_full_discard_new_stream_refuses_instead_of_dropping_the_oldest(
    nats_url: str,
) -> None:
    tiny = dataclasses.replace(subjects.FILLS, max_bytes=2048)
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_stream(tiny)
        subject = "fills.test"
        first = await bus.publish(subject, _event(0))
        refused = False
        for n in range(1, 100):
            try:
                await bus.publish(subject, _event(n))
            except APIError:
                refused = True
                break
        assert refused
        info = await bus.js.stream_info(tiny.name)
        assert info.state.first_seq == first.seq  # nothing was dropped
    finally:
        await bus.close()


async def test_without_byte_limits_only_the_age_limits_apply(nats_url: str) -> None:
    """The default (make run, tests, compose): no disk is reserved up front."""
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        for spec in subjects.ALL_STREAMS:
            config = (await bus.js.stream_info(spec.name)).config
            assert config.max_bytes in (None, -1), spec.name
            assert (config.max_age or 0) == spec.max_age_s, spec.name
    finally:
        await bus.close()
