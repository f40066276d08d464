"""The ledger as its own NATS user (ADR-0117) saves and loads snapshots and reads accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import FillReceived
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.nats_permissions import SERVICE_ACCESS, authorization_block
from phalanx_ledger.service import build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_testing.servers import ServerProcess, start_nats

pytestmark = pytest.mark.integration

PASSWORDS = {service: secrets.token_urlsafe(16) for service in SERVICE_ACCESS}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = tmp_path / "nats.conf"
    config.write_text(authorization_block(lambda service: f'"{PASSWORDS[service]}"'))
    running = start_nats(extra_args=["-c", str(config)])
    try:
        yield running
    finally:
        running.stop()


async def test_the_ledger_user_may_snapshot_and_restore(server: ServerProcess) -> None:
    executor = await Bus.connect(
        server.url, "executor", auth=NatsAuth("executor", PASSWORDS["executor"])
    )
    try:
        await executor.ensure_topology()
        fill = FillReceived(
            event_id="f1",
            ts_event=1,
            ts_init=1,
            fill_id=1,
            order_id=10,
            account_id=1,
            contract_id=1,
            symbol="MNQZ6",
            action="Buy",
            qty=1,
            price=Decimal(21000),
        )
        await executor.publish(subjects.fills_subject(1), fill)
    finally:
        await executor.close()
    settings = LedgerSettings(
        nats_url=server.url,
        ledger_port=0,
        nats_user="ledger",
        nats_password=PASSWORDS["ledger"],
        snapshot_interval_s=3600.0,
    )
    first = await build_ledger(settings)
    await first.start()
    try:
        assert first.snapshots is not None
        assert first.accounts is not None
        assert len(first.accounts) == 0
        head = await first.snapshots.take()
        assert head is not None
        assert head.covered.fills_seq == 1
    finally:
        await first.stop()
    restarted = await build_ledger(settings)
    await restarted.start()
    try:
        assert restarted.loaded == head.covered
        assert restarted.projection.fills_applied == 1
    finally:
        await restarted.stop()
