"""FastReadKeyValue reads what nats-py's own KeyValue reads, on a real nats-server (ADR-0145)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.js.errors import InvalidKeyError, KeyNotFoundError
from nats.js.kv import KeyValue

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.kv_reads import FastReadKeyValue

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def buckets(nats_url: str) -> AsyncIterator[tuple[KeyValue, FastReadKeyValue]]:
    """The same bucket as nats-py binds it and as the bus binds it."""
    bus = await Bus.connect(nats_url, "t")
    try:
        await bus.ensure_topology()
        fast = await bus.key_value(subjects.Buckets.INTENTS)
        assert isinstance(fast, FastReadKeyValue)
        plain = await bus.js.key_value(subjects.Buckets.INTENTS.name)
        assert not isinstance(plain, FastReadKeyValue)
        yield plain, fast
    finally:
        await bus.close()


async def _read(kv: KeyValue, key: str) -> tuple[bytes | None, int | None] | str:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return "not found"
    return entry.value, entry.revision


async def test_values_written_every_way_read_the_same(
    buckets: tuple[KeyValue, FastReadKeyValue],
) -> None:
    plain, fast = buckets
    await plain.put("put", b'{"a":1}')
    created = await plain.create("created", b"x")
    await plain.update("created", b"y", last=created)
    await plain.put("empty", b"")
    for key in ("put", "created", "empty", "never-written"):
        assert await _read(fast, key) == await _read(plain, key), key
    assert await _read(fast, "created") == (b"y", created + 1)
    assert await _read(fast, "empty") == (None, (await plain.get("empty")).revision)


async def test_deleted_and_purged_keys_are_not_found_as_nats_py_says(
    buckets: tuple[KeyValue, FastReadKeyValue],
) -> None:
    plain, fast = buckets
    for key in ("deleted", "purged"):
        await plain.put(key, b"v")
    await plain.delete("deleted")
    await plain.purge("purged")
    for key in ("deleted", "purged"):
        assert await _read(plain, key) == "not found"
        assert await _read(fast, key) == "not found", key
    await plain.create("deleted", b"again")  # a deleted key may be created anew
    assert await _read(fast, "deleted") == await _read(plain, "deleted")


async def test_a_key_nats_py_refuses_is_refused(
    buckets: tuple[KeyValue, FastReadKeyValue],
) -> None:
    _, fast = buckets
    with pytest.raises(InvalidKeyError):
        await fast.get("bad key")


async def test_a_given_revision_is_read_as_nats_py_reads_it(
    buckets: tuple[KeyValue, FastReadKeyValue],
) -> None:
    plain, fast = buckets
    await plain.put("rev", b"1")
    second = await plain.put("rev", b"2")
    assert (await fast.get("rev", revision=second)).value == b"2"
    with pytest.raises(KeyNotFoundError):  # the bucket keeps one revision per key
        await fast.get("rev", revision=second - 1)
