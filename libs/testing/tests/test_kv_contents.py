"""``bucket_entries`` reads every live key of a bucket on a real nats-server."""

from __future__ import annotations

import nats
import pytest

from phalanx_testing.kv_contents import bucket_entries

pytestmark = pytest.mark.integration


async def test_live_keys_with_their_latest_values_and_no_deleted_or_purged_ones(
    nats_url: str,
) -> None:
    nc = await nats.connect(nats_url)
    try:
        kv = await nc.jetstream().create_key_value(bucket="contents", history=5)
        assert await bucket_entries(nc, "contents") == {}
        await kv.put("a", b"1")
        await kv.put("a", b"2")
        await kv.put("b.c", b"3")
        await kv.put("gone", b"4")
        await kv.delete("gone")
        await kv.put("purged", b"5")
        await kv.purge("purged")
        assert await bucket_entries(nc, "contents") == {"a": b"2", "b.c": b"3"}
    finally:
        await nc.close()
