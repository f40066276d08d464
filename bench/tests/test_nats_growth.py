"""The nats-server growth harness drives what it says, and samples the server it started."""

from __future__ import annotations

from phalanx_bench.nats_growth import measure


async def test_every_part_leaves_its_messages_and_claims_in_the_server() -> None:
    samples = await measure(200, accounts=20, per_signal=5, sample_every=100, idle_s=0.0)

    assert [s.intents for s in samples] == [0, 100, 200, 200]
    last = samples[-1].streams
    assert last["KV_intents"] == (200, 200)  # one claim per intent, one key each
    assert last["ORDERS"] == (200 + 40, 20 + 1)  # accepted per intent, planned per signal
    assert last["FILLS"] == (200, 20)
    assert last["SIGNALS"] == (40, 1)
    assert last["EXEC"][0] == 0  # a work queue: every batch was acked
    assert last["KV_account_order"][1] == 20  # one queue per account
    assert all(s.rss_kib > 0 and s.heap_alloc > 0 for s in samples)


async def test_a_short_intent_ttl_empties_the_claims_bucket() -> None:
    samples = await measure(
        50, accounts=10, per_signal=5, sample_every=50, parts=frozenset({"intents"}),
        intent_ttl_s=1.0, idle_s=2.5,
    )  # fmt: skip

    assert samples[-2].streams["KV_intents"] == (50, 50)
    assert samples[-1].streams["KV_intents"] == (0, 0)
