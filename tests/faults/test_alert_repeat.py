"""The same TradingView alert twice, 200 ms apart, then once more after the repeat window.

An id-less body (TradingView's static alert message) sent again 200 ms later is a resend: one
order per account. The same body after the strategy's repeat window is a new alert: one more
order per account. The subscriptions allow adding to a position, so the position semantics
could not hide a second order: only the duplicate detection keeps it from the venue.

The other half — an entry, an exit and the same entry again after the window, each trading —
is covered by tests/e2e/test_signal_contract.py
(``test_the_readme_demo_can_be_sent_exited_and_sent_again_trading_each_time``); this test adds
the 200 ms resend with the orders counted at the venue, over the whole system as processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from tests.faults.rig_tokens import FaultRig, fault_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LOGINS = 2
ACCOUNTS_PER_LOGIN = 3
WINDOW_S = 1.0
ALERT = {"ticker": "MNQ1!", "action": "buy", "quantity": 1}


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultRig]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    async with fault_system(tmp_path, logins=LOGINS, accounts_per_login=ACCOUNTS_PER_LOGIN) as r:
        yield r


async def test_an_alert_sent_twice_200ms_apart_trades_once_and_again_after_the_window(
    rig: FaultRig,
) -> None:
    resp = await rig.http.post(
        f"{rig.endpoints.ingest}/admin/strategies/{rig.seeded.strategy_id}/subscriptions:bulk",
        json={"account_ids": rig.seeded.account_ids, "allow_add": True},
        headers=rig.admin,
    )
    resp.raise_for_status()
    await rig.strategy(repeat_window_s=WINDOW_S)
    await rig.ready()

    started = time.monotonic()
    first = await rig.send(ALERT)
    await asyncio.sleep(0.2)
    again = await rig.send(ALERT)
    assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    entry = await rig.outcome(first.json()["id"])
    assert [a["outcome"] for a in entry["accounts"]] == ["placed"] * LOGINS * ACCOUNTS_PER_LOGIN
    once = await rig.entries_at_venue()

    await asyncio.sleep(max(0.0, WINDOW_S + 0.2 - (time.monotonic() - started)))
    later = await rig.send(ALERT)
    assert later.status_code == 200, later.text
    assert not later.json().get("duplicate", False)
    assert later.json()["id"] != first.json()["id"]
    added = await rig.outcome(later.json()["id"])
    assert [a["outcome"] for a in added["accounts"]] == ["placed"] * LOGINS * ACCOUNTS_PER_LOGIN
    twice = await rig.entries_at_venue()
    positions = await rig.venue_positions()
    violations = await rig.violations()

    accounts = rig.seeded.account_ids
    assert once == dict.fromkeys(accounts, 1), once  # the resend reached no account
    assert twice == dict.fromkeys(accounts, 2), twice  # the later alert, once on each
    assert positions == dict.fromkeys(accounts, 2), positions
    assert violations["count"] == 0
    print(
        f"measured: {len(accounts)} accounts; resend after 200 ms: duplicate, "
        f"{sum(once.values())} orders; after the window: {sum(twice.values()) - sum(once.values())}"
        f" more; {violations['count']} violations"
    )
