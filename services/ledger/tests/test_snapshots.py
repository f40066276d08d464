"""Snapshots over a real nats-server (ADR-0122): a restart from one gives the book a full
rebuild gives, reading only the messages after it; an unusable one falls back to a rebuild."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from nats.js.kv import KeyValue

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived, OrderAccepted, OrderRejected
from phalanx_ledger.book_state import FORMAT_VERSION
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_ledger.snapshot_store import SnapshotStore
from phalanx_testing.waiting import eventually

from .conftest import T0, accepted_order, fill_event

pytestmark = pytest.mark.integration

TOKEN = "ledger-admin-token-for-snapshot-tests-77c1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NO_TIMER = 3600.0  # snapshots only when a test takes one


def _fill(
    fill_id: int, order_id: int, account_id: int, action: str, qty: int, price: str, symbol: str
) -> FillReceived:
    return fill_event(
        fill_id,
        order_id,
        account_id,
        action,
        qty,
        price,
        symbol=symbol,
        ts_event=T0 + (fill_id % 7) * 1_000_000 + fill_id,  # not in fill_id order
        event_id=f"fill-{fill_id}-{account_id}",
    )


def _accepted(order_id: int, account_id: int, strategy_id: str, oso1: int) -> OrderAccepted:
    return accepted_order(
        order_id, account_id, strategy_id, oso1, signal_id=f"sig-{strategy_id}-{order_id}"
    )


def _rejected(n: int, account_id: int) -> OrderRejected:
    return OrderRejected(
        event_id=f"rejected-{n}",
        ts_event=T0,
        ts_init=T0,
        intent_id=f"rej-{n}",
        signal_id=f"sig-rej-{n}",
        strategy_id="trend",
        account_id=account_id,
        login_id="login-a",
        reason="risk",
    )


Event = FillReceived | OrderAccepted | OrderRejected


def _first_part() -> Iterator[Event]:
    """Entries with bracket legs on two accounts, manual trades, an unknown product, a
    rejection, a duplicate, and a fill whose account is unknown (held)."""
    yield _accepted(500, 1, "trend", 501)
    yield _accepted(600, 2, "meanrev", 601)
    yield _rejected(1, 2)
    yield _fill(1, 500, 1, "Buy", 3, "21000", "MNQZ6")
    yield _fill(2, 600, 2, "Sell", 2, "21005.25", "MNQZ6")
    yield _fill(3, 501, 1, "Sell", 1, "21010", "MNQZ6")
    yield _fill(4, 900, 2, "Buy", 1, "21001", "MNQZ6")  # outside
    yield _fill(5, 910, 1, "Buy", 2, "7.5", "QQQX9")  # product not in the contract table
    yield _fill(3, 501, 1, "Sell", 1, "21010", "MNQZ6")  # duplicate, new message id
    yield _fill(6, 700, 0, "Buy", 1, "21002", "MNQZ6")  # account unknown: held
    yield _fill(7, 501, 1, "Sell", 1, "21012.5", "MNQZ6")  # last message before the snapshot


def _second_part() -> Iterator[Event]:
    """After the snapshot: a duplicate of a fill before it, the acceptance that releases the
    held fill, a reversal, more fills."""
    yield _fill(7, 501, 1, "Sell", 1, "21012.5", "MNQZ6")  # duplicate across the boundary
    yield _accepted(700, 3, "trend", 701)  # attributes the held fill 6 to account 3
    yield _fill(8, 601, 2, "Buy", 3, "20990", "MNQZ6")  # closes 1 of meanrev, reverses
    yield _fill(9, 910, 1, "Sell", 1, "7.75", "QQQX9")
    yield _fill(10, 701, 3, "Sell", 1, "21020", "MNQZ6")
    yield _rejected(2, 1)


async def _publish(bus: Bus, events: Iterator[Event]) -> int:
    count = 0
    for event in events:
        if isinstance(event, FillReceived):
            subject = (
                subjects.fills_subject(event.account_id)
                if event.account_id
                else subjects.UNATTRIBUTED_FILLS
            )
            msg_id = f"{event.event_id}-{count}-{id(event)}"  # duplicates reach the stream
        else:
            subject = subjects.orders_subject(event.account_id)
            msg_id = event.event_id
        await bus.publish(subject, event, msg_id=msg_id)
        count += 1
    return count


@asynccontextmanager
async def _ledger(nats_url: str, *, snapshots: bool) -> AsyncIterator[LedgerService]:
    settings = LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        admin_token=TOKEN,
        snapshot_interval_s=NO_TIMER if snapshots else 0.0,
        snapshot_every_fills=10**9,
    )
    service = await build_ledger(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def _book(service: LedgerService) -> dict[str, Any]:
    """Everything the ledger answers about its book."""
    async with httpx.AsyncClient(base_url=service.url, headers=AUTH, timeout=10.0) as client:

        async def get(path: str, **params: Any) -> Any:
            response = await client.get(path, params=params)
            assert response.status_code == 200, response.text
            return response.json()

        health = await get("/healthz")
        book: dict[str, Any] = {
            "counts": {
                key: health[key]
                for key in ("fills_applied", "duplicate_fills", "unattributed_fills")
            },
            "positions": await get("/positions"),
            "fills": await get("/admin/fills", limit=10_000),
            "by_strategy": await get("/admin/positions/by-strategy"),
        }
        for account in (1, 2, 3):
            book[f"account-{account}"] = await get(f"/positions/{account}")
        for by in ("day", "strategy", "account"):
            book[f"pnl-{by}"] = await get("/admin/pnl", by=by)
        return book


async def _snapshot_kv(bus: Bus) -> KeyValue:
    return await bus.key_value(subjects.Buckets.LEDGER_SNAPSHOTS)


async def test_a_restart_from_a_snapshot_gives_the_book_of_a_full_rebuild(
    nats_url: str, bus: Bus
) -> None:
    first = await _publish(bus, _first_part())
    async with _ledger(nats_url, snapshots=True) as before:
        assert before.loaded is None  # nothing to load: a full replay
        assert before.snapshots is not None
        head = await before.snapshots.take()
        assert head is not None
        assert head.covered.fills_seq + head.covered.orders_seq == first
        before_book = await _book(before)
    tail = await _publish(bus, _second_part())

    async with _ledger(nats_url, snapshots=True) as restarted:
        assert restarted.loaded == head.covered
        # only what follows the snapshot was read: no message of the first part again
        assert sum(f.delivered for f in restarted.followers) == tail
        restarted_book = await _book(restarted)
    async with _ledger(nats_url, snapshots=False) as rebuilt:
        assert rebuilt.loaded is None
        assert sum(f.delivered for f in rebuilt.followers) == first + tail
        rebuilt_book = await _book(rebuilt)

    assert restarted_book == rebuilt_book
    # the second part changed the book (the comparison is not between two empty books)
    assert restarted_book != before_book
    assert rebuilt_book["counts"] == {
        "fills_applied": 10,  # fill 6 released by its order's acceptance
        "duplicate_fills": 2,  # fill 3 once, fill 7 once across the snapshot boundary
        "unattributed_fills": 0,
    }


async def test_the_messages_after_the_snapshot_are_applied_once(nats_url: str, bus: Bus) -> None:
    """The boundary: the last message a snapshot covers is not read again, the next one is."""
    await _publish(bus, _first_part())
    async with _ledger(nats_url, snapshots=True) as before:
        assert before.snapshots is not None
        head = await before.snapshots.take()
        assert head is not None
        counts_at_snapshot = (await _book(before))["counts"]
    await _publish(bus, iter([_fill(11, 500, 1, "Buy", 1, "21030", "MNQZ6")]))

    async with _ledger(nats_url, snapshots=True) as restarted:
        fills = restarted.followers[0]
        assert fills.delivered == 1
        assert fills.last_seq == head.covered.fills_seq + 1
        counts = (await _book(restarted))["counts"]
    assert counts == {
        **counts_at_snapshot,
        "fills_applied": counts_at_snapshot["fills_applied"] + 1,
    }


def _other_version(data: bytes) -> bytes:
    return struct.pack(">4sI", b"PXLB", FORMAT_VERSION + 1) + data[8:]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flipped(data: bytes) -> bytes:
    return data[:20] + bytes([data[20] ^ 0xFF]) + data[21:]


@pytest.mark.parametrize(
    "spoil",
    [_other_version, _truncated, _flipped],
    ids=["format-version-changed", "truncated", "bytes-changed"],
)
async def test_a_snapshot_that_does_not_decode_falls_back_to_a_full_rebuild(
    nats_url: str, bus: Bus, spoil: Callable[[bytes], bytes]
) -> None:
    total = await _publish(bus, _first_part())
    async with _ledger(nats_url, snapshots=True) as before:
        assert before.snapshots is not None
        assert await before.snapshots.take() is not None
        expected = await _book(before)
    store = SnapshotStore(await _snapshot_kv(bus))
    found = await store.load()
    assert found is not None
    head, data = found
    # stored as a well-formed snapshot (digest of the spoiled bytes): only decoding can tell
    await store.save(spoil(data), head.covered, head.taken_ns)

    async with _ledger(nats_url, snapshots=True) as restarted:
        assert restarted.loaded is None
        assert sum(f.delivered for f in restarted.followers) == total
        assert await _book(restarted) == expected


async def test_a_chunk_changed_in_the_bucket_falls_back_to_a_full_rebuild(
    nats_url: str, bus: Bus
) -> None:
    total = await _publish(bus, _first_part())
    async with _ledger(nats_url, snapshots=True) as before:
        assert before.snapshots is not None
        head = await before.snapshots.take()
        assert head is not None
        expected = await _book(before)
    kv = await _snapshot_kv(bus)
    await kv.put(f"{head.slot}.0", b"not the chunk the head's digest covers")

    async with _ledger(nats_url, snapshots=True) as restarted:
        assert restarted.loaded is None
        assert sum(f.delivered for f in restarted.followers) == total
        assert await _book(restarted) == expected


async def test_a_snapshot_of_an_earlier_stream_is_not_used(nats_url: str, bus: Bus) -> None:
    """FILLS deleted and recreated: the snapshot covers sequences the stream never had."""
    await _publish(bus, _first_part())
    async with _ledger(nats_url, snapshots=True) as before:
        assert before.snapshots is not None
        assert await before.snapshots.take() is not None
    await bus.js.delete_stream(subjects.FILLS.name)
    await bus.ensure_topology()
    await _publish(bus, iter([_fill(1, 500, 1, "Buy", 3, "21000", "MNQZ6")]))

    async with _ledger(nats_url, snapshots=True) as restarted:
        assert restarted.loaded is None
        book = await _book(restarted)
    assert book["counts"]["fills_applied"] == 1


async def test_a_snapshot_is_taken_after_every_n_fills(nats_url: str, bus: Bus) -> None:
    settings = LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        admin_token=TOKEN,
        snapshot_interval_s=NO_TIMER,
        snapshot_every_fills=3,
    )
    service = await build_ledger(settings)
    await service.start()
    try:
        assert service.snapshots is not None
        store = service.snapshots.store
        assert await store.head() is None  # empty streams: nothing to save
        await _publish(bus, iter([_fill(n, 500, 1, "Buy", 1, "21000", "MNQZ6") for n in (1, 2)]))
        await _publish(bus, iter([_fill(3, 500, 1, "Buy", 1, "21000", "MNQZ6")]))

        async def saved_three() -> bool:
            head = await store.head()
            return head is not None and head.covered.fills_seq == 3

        assert await eventually(saved_three, what="a snapshot covering the third fill")
    finally:
        await service.stop()
