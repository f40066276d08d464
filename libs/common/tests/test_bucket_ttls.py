"""Declared KV time to live on buckets that exist already (ADR-0185), on a real nats-server."""

from __future__ import annotations

import dataclasses

import pytest

from phalanx_common import subjects
from phalanx_common.bucket_ttls import apply_bucket_ttls
from phalanx_common.bus import Bus
from phalanx_common.signal_ages import LONGEST_DEADLINE_S

pytestmark = pytest.mark.integration

INTENTS = subjects.Buckets.INTENTS


async def _max_age_s(bus: Bus, bucket: subjects.Bucket) -> float:
    return float((await bus.js.stream_info(bucket.stream)).config.max_age or 0.0)


async def test_an_intents_bucket_created_without_a_ttl_is_given_the_declared_one(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "t")
    try:
        # As every deployment before ADR-0185 created it: no TTL, one claim in it.
        old = await bus.key_value(dataclasses.replace(INTENTS, ttl_s=0.0))
        await old.create("sig1-7", b"{}")
        await bus.ensure_topology()
        assert await _max_age_s(bus, INTENTS) == 0.0  # ensure_topology binds a bucket as it is

        assert await apply_bucket_ttls(bus) == [INTENTS.name]

        assert await _max_age_s(bus, INTENTS) == subjects.INTENT_CLAIM_TTL_S
        assert (await old.get("sig1-7")).value == b"{}"  # the claims already there stay
        for bucket in subjects.ALL_BUCKETS:
            assert await _max_age_s(bus, bucket) == bucket.ttl_s, bucket.name
        assert await apply_bucket_ttls(bus) == []  # nothing left to change
    finally:
        await bus.close()


async def test_a_ttl_shorter_than_the_duplicate_window_brings_the_window_down(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "t")
    try:
        bucket = subjects.Bucket("short", ttl_s=30.0)
        await bus.key_value(dataclasses.replace(bucket, ttl_s=0.0))  # window: 2 minutes

        assert await apply_bucket_ttls(bus, [bucket]) == ["short"]

        config = (await bus.js.stream_info(bucket.stream)).config
        assert (config.max_age, config.duplicate_window) == (30.0, 30.0)
    finally:
        await bus.close()


async def test_a_bucket_not_created_yet_is_left_to_key_value(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "t")
    try:
        assert await apply_bucket_ttls(bus, [INTENTS]) == []
        await bus.key_value(INTENTS)
        assert await _max_age_s(bus, INTENTS) == subjects.INTENT_CLAIM_TTL_S
    finally:
        await bus.close()


def test_a_claim_outlives_every_delivery_of_its_intent() -> None:
    # Every delivery of an intent comes from an EXEC message stored while its signal was not
    # past its deadline (at most LONGEST_DEADLINE_S after receipt) and kept at most
    # EXEC.max_age_s; the claim is written after receipt. Half a day to spare, at least.
    last_delivery_s = LONGEST_DEADLINE_S + subjects.EXEC.max_age_s
    assert last_delivery_s + 12 * 3600 <= subjects.INTENT_CLAIM_TTL_S
    assert subjects.Buckets.INTENTS.ttl_s == subjects.INTENT_CLAIM_TTL_S
