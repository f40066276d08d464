"""Leaving a claim lease ends its renewer even when a KV request swallowed the cancellation.

The chaos test stalled on this: Python 3.11's ``asyncio.wait_for`` (inside every nats-py request)
can drop a cancellation that arrives just as the request completes. The renewer then went on
renewing, ``hold()`` waited for it forever, the intent never ended and its lease stayed alive,
so no other replica could take it over: one login's accounts got no outcome at all. The KV here
is the real bucket; only the lost cancellation is staged (it cannot be provoked on demand).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.errors import KeyNotFoundError

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode, encode
from phalanx_common.records import IntentLeaseRecord
from phalanx_common.tasks import cancel_and_wait
from phalanx_executor.claim_leases import ClaimLeases
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


class LosesOneCancellation:
    """The real bucket, except that one ``update`` swallows the cancellation landing in it."""

    def __init__(self, kv: Any) -> None:
        self._kv = kv
        self.updating = asyncio.Event()
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def update(self, *args: Any, **kwargs: Any) -> int:
        if self.lost:
            return int(await self._kv.update(*args, **kwargs))
        self.updating.set()
        try:
            await asyncio.sleep(30)  # the request in flight when the holder leaves
        except asyncio.CancelledError:
            self.lost += 1  # as wait_for does when the reply lands with the cancellation
        return int(await self._kv.update(*args, **kwargs))


async def test_leaving_the_lease_ends_even_if_the_renewer_lost_a_cancellation(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        kv = LosesOneCancellation(await bus.key_value(subjects.Buckets.INTENT_LEASES))
        leases = ClaimLeases(kv, "r0", LiveClock(), lease_s=0.4)  # type: ignore[arg-type]

        async def work() -> None:
            async with leases.hold("intent-1"):
                await kv.updating.wait()  # the renewer is inside a request

        task = asyncio.create_task(work())
        done, _ = await asyncio.wait({task}, timeout=10.0)
        await cancel_and_wait(task)
        assert task in done, "leaving the lease waited for a renewer that never ended"
        task.result()
        assert kv.lost == 1
        assert not leases.held("intent-1")
    finally:
        await bus.close()


async def test_leaving_deletes_the_lease_unless_the_owner_ended_the_claim(nats_url: str) -> None:
    # ADR-0145: a terminal claim's lease is left to run out; any other leaves no lease behind.
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        kv = await bus.key_value(subjects.Buckets.INTENT_LEASES)
        leases = ClaimLeases(kv, "r0", LiveClock(), lease_s=10.0)
        async with leases.hold("released"):
            pass
        async with leases.hold("accepted"):
            leases.ended("accepted")
        with pytest.raises(KeyNotFoundError):
            await kv.get("released")
        kept = await kv.get("accepted")
        assert decode(kept.value or b"", IntentLeaseRecord).owner == "r0"
        async with leases.hold("accepted"):  # a later hold of the same id deletes as before
            pass
        with pytest.raises(KeyNotFoundError):
            await kv.get("accepted")
    finally:
        await bus.close()


async def test_a_deferred_first_write_never_overwrites_another_owners_lease(nats_url: str) -> None:
    # ADR-0181: a fresh claim's lease is written a renewal period late. If the claim was taken
    # over meanwhile (this owner stalled past the grace), the taker's lease stands and this
    # owner no longer counts its claim as held, so its next send check fails.
    bus = await Bus.connect(nats_url, "test")
    try:
        await bus.ensure_topology()
        kv = await bus.key_value(subjects.Buckets.INTENT_LEASES)
        clock = LiveClock()
        taker = IntentLeaseRecord(
            intent_id="taken", owner="r1", expires_ns=clock.time_ns() + 10**12
        )
        await kv.put("taken", encode(taker))
        await kv.put("mine", encode(IntentLeaseRecord(intent_id="mine", owner="r0", expires_ns=1)))
        leases = ClaimLeases(kv, "r0", clock, lease_s=0.4, grace_s=30.0)
        async with leases.hold("taken", clock.time_ns()), leases.hold("mine", clock.time_ns()):
            assert leases.held("taken")  # young: protected before any write
            assert not leases.written("taken")
            await eventually(lambda: not leases.held("taken"), what="the taken claim let go")
            await eventually(
                lambda: leases.written("mine"), what="a leftover lease of ours renewed"
            )
            assert leases.held("mine")
        kept = decode((await kv.get("taken")).value or b"", IntentLeaseRecord)
        assert kept.owner == "r1"
        with pytest.raises(KeyNotFoundError):
            await kv.get("mine")
    finally:
        await bus.close()
