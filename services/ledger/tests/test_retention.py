"""FILLS/ORDERS age limits are the ledger's to set, and what aged out uncovered is reported
(ADR-0122), over a real nats-server."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived
from phalanx_common.settings import SettingsError, load_settings
from phalanx_ledger.service import build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

DAY_S = 86_400.0


async def _max_age_s(bus: Bus, stream: str) -> float:
    info = await bus.js.stream_info(stream)
    return float(info.config.max_age or 0.0)


async def test_only_the_ledger_changes_the_age_limit_of_fills_and_orders(bus: Bus) -> None:
    assert await _max_age_s(bus, "FILLS") == 0.0  # the default keeps them forever
    await bus.ensure_topology(ledger_history_s=45 * DAY_S)  # as the ledger does
    await bus.ensure_topology()  # as every other service does at its start
    for stream in ("FILLS", "ORDERS"):
        assert await _max_age_s(bus, stream) == 45 * DAY_S
    assert await _max_age_s(bus, "SIGNALS") == subjects.SIGNALS.max_age_s
    await bus.ensure_topology(ledger_history_s=0.0)
    assert await _max_age_s(bus, "FILLS") == 0.0


def test_a_history_shorter_than_the_minimum_or_without_snapshots_is_refused() -> None:
    with pytest.raises(SettingsError, match="LEDGER_HISTORY_DAYS"):
        load_settings(LedgerSettings, {"PHALANX_LEDGER_HISTORY_DAYS": "2"})
    with pytest.raises(SettingsError, match="needs snapshots"):
        load_settings(
            LedgerSettings,
            {"PHALANX_LEDGER_HISTORY_DAYS": "60", "PHALANX_SNAPSHOT_INTERVAL_S": "0"},
        )
    settings = load_settings(LedgerSettings, {"PHALANX_LEDGER_HISTORY_DAYS": "30"})
    assert settings.ledger_history_s == 30 * DAY_S
    assert load_settings(LedgerSettings, {}).ledger_history_s == 0.0


def _fill(n: int) -> FillReceived:
    return FillReceived(
        event_id=f"f{n}",
        ts_event=n,
        ts_init=n,
        fill_id=n,
        order_id=100 + n,
        account_id=1,
        contract_id=1,
        symbol="MNQZ6",
        action="Buy",
        qty=1,
        price=Decimal(21000),
    )


async def test_fills_gone_from_the_stream_before_a_snapshot_covered_them_are_reported(
    nats_url: str, bus: Bus
) -> None:
    settings = LedgerSettings(nats_url=nats_url, ledger_port=0, snapshot_interval_s=3600.0)
    for n in (1, 2):
        await bus.publish(subjects.fills_subject(1), _fill(n))
    first = await build_ledger(settings)
    await first.start()
    assert first.snapshots is not None
    head = await first.snapshots.take()
    await first.stop()
    assert head is not None
    assert head.covered.fills_seq == 2
    for n in (3, 4, 5):
        await bus.publish(subjects.fills_subject(1), _fill(n))
    await bus.js.purge_stream("FILLS", keep=1)  # 3 and 4 gone, as an age limit would do

    restarted = await build_ledger(settings)
    await restarted.start()
    try:
        async with httpx.AsyncClient(base_url=restarted.url) as client:
            health = (await client.get("/healthz")).json()
    finally:
        await restarted.stop()
    assert health["streams"]["FILLS"]["lost"] == 2
    assert health["streams"]["ORDERS"]["lost"] == 0
    assert health["fills_applied"] == 3  # 1 and 2 from the snapshot, 5 from the stream


async def test_the_age_limit_is_applied_only_once_a_snapshot_covers_the_streams(
    nats_url: str, bus: Bus
) -> None:
    """Turning the limit on must not drop messages no snapshot holds yet."""
    for n in (1, 2, 3):
        await bus.publish(subjects.fills_subject(1), _fill(n))
    settings = LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        snapshot_interval_s=3600.0,
        ledger_history_days=30.0,
    )
    service = await build_ledger(settings)
    try:
        assert await _max_age_s(bus, "FILLS") == 0.0  # built, nothing snapshotted yet
        await service.start()
        assert service.snapshots is not None
        store = service.snapshots.store

        async def limited() -> bool:
            return await _max_age_s(bus, "FILLS") == 30 * DAY_S

        assert await eventually(limited, what="FILLS limited to 30 days")
        head = await store.head()
        assert head is not None
        assert head.covered.fills_seq == 3  # the snapshot came first
        assert await _max_age_s(bus, "ORDERS") == 30 * DAY_S
    finally:
        await service.stop()
