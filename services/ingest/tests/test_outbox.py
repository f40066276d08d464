"""The durable outbox over a real nats-server that is stopped and restarted (ADR-0010).

Every webhook that got a 2xx must reach the SIGNALS stream exactly once after NATS returns;
every other one must not be there at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_ingest.outbox import Outbox, OutboxLockedError
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_testing.servers import ServerProcess, start_nats
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer outbox-token"}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A nats-server whose store survives stop/restart (it lives in ``tmp_path``)."""
    server = start_nats(store_dir=str(tmp_path / "nats"))
    try:
        yield server
    finally:
        server.stop()


def ingest_settings(nats_url: str, outbox: Path, **extra: Any) -> IngestSettings:
    return IngestSettings(
        nats_url=nats_url,
        ingest_port=0,
        admin_token="outbox-token",
        ingest_outbox_dir=str(outbox),
        **extra,
    )


async def _stream_signal_ids(url: str) -> list[str]:
    """Every signal id stored in SIGNALS, in stream order (one entry per stored message)."""
    bus = await Bus.connect(url, "test-inspect")
    try:
        info = await bus.js.stream_info(subjects.SIGNALS.name)
        found: list[str] = []
        for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
            if not info.state.messages:
                break
            msg = await bus.js.get_msg(subjects.SIGNALS.name, seq)
            assert msg.data is not None
            event = decode_event(msg.data)
            assert isinstance(event, SignalReceived)
            found.append(event.signal_id)
        return found
    finally:
        await bus.close()


async def _start(nats: ServerProcess, outbox: Path) -> IngestService:
    service = await build_ingest(
        ingest_settings(nats.url, outbox, publish_timeout_s=1.0, webhook_rate_per_min=0)
    )
    await service.start()
    return service


async def _strategy(client: httpx.AsyncClient) -> str:
    created = (await client.post("/admin/strategies", json={"name": "s"}, headers=ADMIN)).json()
    return f"/webhooks/{created['strategy_id']}/{created['secret']}"


def _body(n: int) -> bytes:
    return json.dumps({"ticker": "MNQ1!", "action": "buy", "time": f"t-{n}"}).encode()


async def _health(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/healthz")).json()
    return body


async def test_burst_across_a_nats_stop_every_2xx_is_stored_exactly_once(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    service = await _start(nats_server, tmp_path / "outbox")
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            hook = await _strategy(client)
            answers: dict[int, list[httpx.Response]] = {}

            async def send(n: int) -> None:
                response = await client.post(hook, content=_body(n))
                answers.setdefault(n, []).append(response)

            async def burst(numbers: range) -> None:
                await asyncio.gather(*(send(n) for n in numbers))

            # Before, during (the stop happens while requests are in flight) and after.
            await burst(range(0, 20))
            await asyncio.gather(burst(range(20, 40)), asyncio.to_thread(nats_server.stop))
            await burst(range(40, 60))  # NATS is certainly down now
            await burst(range(40, 45))  # resends while down: recognised by the outbox
            await asyncio.gather(burst(range(60, 80)), asyncio.to_thread(nats_server.restart))
            await burst(range(80, 90))

            accepted: set[str] = set()
            refused: set[int] = set()
            statuses: Counter[int] = Counter()
            for n, responses in answers.items():
                for response in responses:
                    statuses[response.status_code] += 1
                    if 200 <= response.status_code < 300:
                        body = response.json()
                        assert body["success"] is True
                        accepted.add(body["id"])
                    else:
                        assert response.status_code == 503, response.text
                        refused.add(n)
            assert statuses[202] >= 20, statuses  # the outage was really hit
            resent = [answers[n][1].json() for n in range(40, 45)]
            assert all(r["duplicate"] is True and r["queued"] is True for r in resent)

            async def drained() -> bool:
                health = await _health(client)
                return bool(health["nats_connected"]) and health["outbox_pending"] == 0

            assert await eventually(drained, timeout=30, what="outbox drained")

            async def all_stored() -> list[str] | None:
                ids = await _stream_signal_ids(nats_server.url)
                return ids if set(ids) >= accepted else None

            stored = await eventually(all_stored, timeout=30, what="every 2xx signal stored")
            assert stored is not None
            assert Counter(stored).most_common(1)[0][1] == 1  # none stored twice
            assert set(stored) == accepted  # and nothing that was refused
            assert not refused or all(answers[n][0].json().get("id") not in stored for n in refused)
    finally:
        await service.stop()


async def test_signals_queued_while_nats_is_down_are_published_in_order(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    service = await _start(nats_server, tmp_path / "outbox")
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            hook = await _strategy(client)
            nats_server.stop()
            ids = []
            for n in range(10):
                response = await client.post(hook, content=_body(n))
                assert response.status_code == 202, response.text
                assert response.json()["queued"] is True
                ids.append(response.json()["id"])
            assert (await _health(client))["outbox_pending"] == 10
            nats_server.restart()

            async def drained() -> bool:
                return bool((await _health(client))["outbox_pending"] == 0)

            assert await eventually(drained, timeout=30, what="outbox drained")
            assert await _stream_signal_ids(nats_server.url) == ids
            after = await client.post(hook, content=_body(99))
            assert after.status_code == 200  # straight to JetStream again
    finally:
        await service.stop()


async def test_the_outbox_survives_an_ingest_restart(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    service = await _start(nats_server, outbox)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            hook = await _strategy(client)
            nats_server.stop()
            queued = await client.post(hook, content=_body(1))
            assert queued.status_code == 202
    finally:
        await service.stop()
    nats_server.restart()
    assert await _stream_signal_ids(nats_server.url) == []

    restarted = await _start(nats_server, outbox)
    try:

        async def stored() -> list[str]:
            return await _stream_signal_ids(nats_server.url)

        assert await eventually(stored, timeout=30, what="published after restart") == [
            queued.json()["id"]
        ]
    finally:
        await restarted.stop()


async def test_one_outbox_directory_serves_one_process(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    service = await _start(nats_server, tmp_path / "outbox")
    try:
        with pytest.raises(OutboxLockedError):
            await build_ingest(ingest_settings(nats_server.url, tmp_path / "outbox"))
    finally:
        await service.stop()


async def test_a_queued_signal_keeps_its_trace_across_an_ingest_restart(
    nats_server: ServerProcess, tmp_path: Path
) -> None:
    """ADR-0070: the late publish of an outbox row continues the webhook's trace."""
    outbox = tmp_path / "outbox"
    service = await _start(nats_server, outbox)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
            hook = await _strategy(client)
            nats_server.stop()
            queued = await client.post(hook, content=_body(1))  # TradingView: no traceparent
            assert queued.status_code == 202
    finally:
        await service.stop()
    trace_id = queued.json()["trace_id"]
    assert len(trace_id) == 32
    nats_server.restart()
    restarted = await _start(nats_server, outbox)
    try:
        assert await eventually(
            lambda: _stream_signal_ids(nats_server.url), timeout=30, what="published"
        )
        bus = await Bus.connect(nats_server.url, "test-inspect")
        try:
            stored = await bus.js.get_last_msg(subjects.SIGNALS.name, subjects.SIGNALS_ALL)
        finally:
            await bus.close()
    finally:
        await restarted.stop()
    assert stored.data is not None
    event = decode_event(stored.data)
    assert isinstance(event, SignalReceived)
    assert event.trace_id == trace_id
    traceparent = (stored.headers or {}).get("traceparent", "")
    assert traceparent.split("-")[1] == trace_id, traceparent


async def test_an_outbox_written_before_trace_headers_still_drains(tmp_path: Path) -> None:
    """A row of an older outbox (no headers column) is read with an empty trace context."""
    directory = tmp_path / "outbox"
    directory.mkdir()
    db = sqlite3.connect(directory / "outbox.sqlite3")
    db.executescript(
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, signal_id TEXT NOT NULL "
        "UNIQUE, subject TEXT NOT NULL, data BLOB NOT NULL, created_ns INTEGER NOT NULL, "
        "published_ns INTEGER);"
        "INSERT INTO outbox (signal_id, subject, data, created_ns) VALUES ('s1', 'signals.x', "
        "x'00', 1);"
    )
    db.commit()
    db.close()
    old = Outbox(directory, LiveClock())
    await old.open()
    try:
        assert old.pending == 1
        (row,) = await old.next_pending(10)
        assert (row.signal_id, row.headers) == ("s1", {})
        assert await old.add("s2", "signals.x", b"\x01", {"traceparent": "00-ab-cd-01"})
        rows = await old.next_pending(10)
        assert [r.headers for r in rows] == [{}, {"traceparent": "00-ab-cd-01"}]
    finally:
        await old.close()
