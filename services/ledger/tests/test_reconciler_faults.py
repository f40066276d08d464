"""Faults that cannot be staged at the simulator on cue: a trade between the two position reads.

The broker is a stand-in here (only this fault); the bus is a real nats-server.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from phalanx_common.bus import Bus
from phalanx_common.records import AccountRecord
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.reconciler import Reconciler
from phalanx_testing.clock import FakeClock
from phalanx_tradovate import wire

pytestmark = pytest.mark.integration

ACCOUNT = AccountRecord(account_id=5, account_spec="DEMO5", login_id="l5", user_id=1)


class _MovingBroker:
    """Each ``position/deps`` answer is one contract more than the last: the account trades."""

    def __init__(self) -> None:
        self.position_calls = 0

    async def positions(self, account: AccountRecord) -> list[wire.Position]:
        self.position_calls += 1
        return [
            wire.Position(
                id=1, accountId=5, contractId=42, netPos=self.position_calls, netPrice=Decimal(1)
            )
        ]

    async def fills(self, account: AccountRecord) -> list[wire.Fill]:
        return []

    async def contract_name(self, account: AccountRecord, contract_id: int) -> str:
        return "MNQZ6"

    async def fill_fees(self, account: AccountRecord, fill_ids: list[int]) -> list[wire.FillFee]:
        return []


async def test_an_account_that_trades_during_the_check_is_unknown_not_drift(bus: Bus) -> None:
    broker = _MovingBroker()
    reconciler = Reconciler(
        bus=bus,
        projection=PositionsProjection(),
        broker=broker,
        accounts=lambda: [ACCOUNT],
        clock=FakeClock(),
        ready=lambda: True,
    )

    (outcome,) = await reconciler.reconcile()

    assert broker.position_calls == 2
    assert outcome.status == "unknown"
    assert "traded during the check" in outcome.reason
    assert reconciler.drift_reports == 0


async def test_a_ledger_still_replaying_is_not_compared(bus: Bus) -> None:
    broker = _MovingBroker()
    reconciler = Reconciler(
        bus=bus,
        projection=PositionsProjection(),
        broker=broker,
        accounts=lambda: [ACCOUNT],
        clock=FakeClock(),
        ready=lambda: False,
    )

    (outcome,) = await reconciler.reconcile()

    assert (outcome.status, outcome.reason) == ("unknown", "ledger still replaying")
    assert broker.position_calls == 0
