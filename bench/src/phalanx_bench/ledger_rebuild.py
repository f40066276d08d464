"""How long the ledger takes to start over 1,000,000 fills: full rebuild vs. snapshot restart.

``phalanx-bench-ledger [--fills N] [--tail N] [--nats-url URL] [--out PATH]`` (``make bench``
runs it after the latency benchmark). Against a real JetStream (a fresh ``nats-server`` from
the test plugin unless ``--nats-url`` is given):

1. publishes ``--fills`` synthetic fills (300 accounts, two products, entries attributed by one
   ``OrderAccepted`` per ten orders, every fill on its own account's subject) and waits until
   FILLS holds them all;
2. starts a ledger with snapshots: its start is a **full rebuild** (the streams replayed from
   their first message); then it saves a snapshot (the time to capture, encode and store it);
3. publishes ``--tail`` more fills, as if the ledger had been down a while;
4. starts a ledger again: the **snapshot restart** (load the snapshot, replay the tail);
5. starts a ledger without snapshots: a second full rebuild, over everything, whose book must
   equal the snapshot restart's (positions, fill count, P&L by strategy) — else it fails.

Prints and writes (``--out``, default ``bench/results/ledger-rebuild.json``) the JSON report:
the times in seconds, the fills per second of each, the snapshot's size, and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import encode
from phalanx_common.events import FillReceived, OrderAccepted
from phalanx_ledger.pnl import pnl_rows
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.servers import start_nats

__all__ = ["main", "run_ledger_rebuild", "synthetic_fills"]

T0 = 1_764_514_800 * 1_000_000_000  # 2025-11-30T15:00Z
ACCOUNTS = 300
SYMBOLS = (("MNQZ6", 3570918, 21_000), ("ESZ6", 3570919, 6_000))


def synthetic_fills(start: int, count: int) -> Iterator[FillReceived | OrderAccepted]:
    """Fills ``start`` .. ``start + count - 1`` (two per order, alternating buy and sell per
    account so positions open and close), and an ``OrderAccepted`` before every tenth order."""
    for n in range(start, start + count):
        order_id = 10_000_000 + n // 2
        account_id = 1 + (n // 2) % ACCOUNTS
        symbol, contract_id, base = SYMBOLS[(n // (2 * ACCOUNTS)) % 2]
        if n % 2 == 0 and order_id % 10 == 0:
            yield OrderAccepted(
                event_id=f"bench-accepted-{order_id}",
                ts_event=T0 + n * 1_000_000,
                ts_init=T0 + n * 1_000_000,
                intent_id=f"bench-intent-{order_id}",
                signal_id=f"bench-signal-{n // 1000}",
                strategy_id=f"strategy-{order_id % 7}",
                account_id=account_id,
                login_id=f"login-{account_id % 50}",
                symbol=symbol,
                order_id=order_id,
            )
        yield FillReceived(
            event_id=f"bench-fill-{n}",
            ts_event=T0 + n * 1_000_000,
            ts_init=T0 + n * 1_000_000,
            fill_id=n + 1,
            order_id=order_id,
            account_id=account_id,
            contract_id=contract_id,
            symbol=symbol,
            action="Buy" if (n // (2 * ACCOUNTS)) % 4 < 2 else "Sell",
            qty=1 + n % 3,
            price=Decimal(base + (n % 40)) + Decimal("0.25") * (n % 4),
        )


async def _publish(bus: Bus, start: int, count: int) -> None:
    """Core-publish the events (JetStream stores them) and wait until FILLS holds them."""
    for n, event in enumerate(synthetic_fills(start, count)):
        subject = (
            subjects.fills_subject(event.account_id)
            if isinstance(event, FillReceived)
            else subjects.orders_subject(event.account_id)
        )
        await bus.nc.publish(subject, encode(event))
        if n % 5_000 == 0:
            await bus.nc.flush(timeout=60)
    await bus.nc.flush(timeout=60)
    deadline = time.monotonic() + 600
    while True:
        info = await bus.js.stream_info(subjects.FILLS.name)
        if int(info.state.messages) >= start + count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"FILLS holds {info.state.messages}, not {start + count}")
        await asyncio.sleep(0.2)


def _settings(nats_url: str, snapshots: bool) -> LedgerSettings:
    return LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        replay_timeout_s=3600.0,
        snapshot_interval_s=3600.0 if snapshots else 0.0,
        snapshot_every_fills=10**12,  # only the snapshots this benchmark takes
        log_level="WARNING",
    )


async def _timed_start(nats_url: str, snapshots: bool) -> tuple[LedgerService, float]:
    service = await build_ledger(_settings(nats_url, snapshots))
    began = time.perf_counter()
    await service.start()
    return service, time.perf_counter() - began


def _book(service: LedgerService) -> object:
    projection = service.projection
    return (
        projection.positions(),
        projection.fills_applied,
        projection.duplicate_fills,
        pnl_rows(projection, "strategy"),
    )


def _machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
    }


async def _run(fills: int, tail: int, nats_url: str) -> dict[str, Any]:
    bus = await Bus.connect(nats_url, "bench-ledger")
    try:
        await bus.ensure_topology()
        began = time.perf_counter()
        await _publish(bus, 0, fills)
        publish_s = time.perf_counter() - began

        first, full_s = await _timed_start(nats_url, snapshots=True)
        try:
            assert first.snapshots is not None
            began = time.perf_counter()
            head = await first.snapshots.take()
            snapshot_s = time.perf_counter() - began
            if head is None:
                raise RuntimeError("the snapshot was not saved")
        finally:
            await first.stop()
            del first  # one book in memory at a time

        await _publish(bus, fills, tail)
        restarted, restart_s = await _timed_start(nats_url, snapshots=True)
        try:
            if restarted.loaded is None:
                raise RuntimeError("the restart did not load the snapshot")
            restarted_book = _book(restarted)
            applied = restarted.projection.fills_applied
        finally:
            await restarted.stop()
            del restarted

        rebuilt, rebuild_s = await _timed_start(nats_url, snapshots=False)
        try:
            if _book(rebuilt) != restarted_book:
                raise RuntimeError("the snapshot restart's book differs from a full rebuild's")
        finally:
            await rebuilt.stop()
    finally:
        await bus.close()
    return {
        "fills": fills,
        "tail_fills": tail,
        "fills_applied": applied,
        "publish_s": round(publish_s, 2),
        "full_rebuild_s": round(full_s, 2),
        "full_rebuild_fills_per_s": round(fills / full_s),
        "snapshot_save_s": round(snapshot_s, 2),
        "snapshot_bytes": head.size,
        "snapshot_chunks": head.chunks,
        "snapshot_restart_s": round(restart_s, 2),
        "full_rebuild_with_tail_s": round(rebuild_s, 2),
        "speedup": round(rebuild_s / restart_s, 1),
        "same_book": True,
        "machine": _machine(),
    }


def run_ledger_rebuild(fills: int, tail: int = 10_000) -> dict[str, Any]:
    """The rebuild benchmark on a nats-server of its own (the ``ledger-rebuild`` preset)."""
    server = start_nats()
    try:
        return asyncio.run(_run(fills, tail, server.url))
    finally:
        server.stop()


def main() -> None:
    """Run the ledger rebuild benchmark and print its JSON report."""
    parser = argparse.ArgumentParser(prog="phalanx-bench-ledger", description=__doc__)
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=10_000, help="fills after the snapshot")
    parser.add_argument("--nats-url", default="", help="default: start a nats-server")
    parser.add_argument("--out", default="bench/results/ledger-rebuild.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = None if args.nats_url else start_nats()
    try:
        url = args.nats_url or (server.url if server is not None else "")
        report = asyncio.run(_run(args.fills, args.tail, url))
    finally:
        if server is not None:
            server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
