"""The signal log: a webhook's signal joined with the planner's and executors' events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.events import (
    IntentExpired,
    IntentSkipped,
    OrderAccepted,
    OrderRejected,
    Signal,
    SignalPlanned,
    SignalReceived,
)
from phalanx_ingest.signallog import SignalLog
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration


async def test_signal_log_shows_each_accounts_outcome_and_phase_times(
    client: httpx.AsyncClient,
    bus: Bus,
    admin_headers: dict[str, str],
    strategy: dict[str, Any],
    hook: str,
) -> None:
    sid = strategy["strategy_id"]
    accepted = await client.post(hook, json={"ticker": "MNQ1!", "action": "buy"})
    signal_id = accepted.json()["id"]
    t0 = 1_000  # offsets from reception, in ns; the events carry absolute times

    async def received_ns() -> int:
        response = await client.get(f"/admin/strategies/{sid}/signals", headers=admin_headers)
        signals = response.json()["signals"]
        return int(signals[0]["received_ns"]) if signals else 0

    base = await eventually(received_ns, what="signal in the log")
    common = {"signal_id": signal_id, "strategy_id": sid}
    events = [
        (subjects.planned_subject(sid),
         SignalPlanned(event_id="p", ts_event=base + 5_000_000, ts_init=base, intents=2,
                       batches=1, skipped=1, **common)),
        (subjects.orders_subject(1),
         OrderAccepted(event_id="a", ts_event=base + 30_000_000, ts_init=base, account_id=1,
                       intent_id=ids.intent_id(signal_id, 1), login_id="l", symbol="MNQZ5",
                       order_id=77, sent_ns=base + 20_000_000, **common)),
        (subjects.orders_subject(2),
         OrderRejected(event_id="r", ts_event=base + 25_000_000, ts_init=base, account_id=2,
                       intent_id=ids.intent_id(signal_id, 2), login_id="l",
                       reason="venue-rejected", **common)),
        (subjects.orders_subject(3),
         IntentSkipped(event_id="s", ts_event=base + t0, ts_init=base, account_id=3,
                       reason="disabled", **common)),
    ]  # fmt: skip
    for subject, event in events:
        await bus.publish(subject, event)

    async def done() -> dict[str, Any] | None:
        response = await client.get(f"/admin/signals/{signal_id}", headers=admin_headers)
        body: dict[str, Any] = response.json()
        return body if body.get("status") == "done" else None

    entry = await eventually(done, what="signal log complete")
    assert entry is not None
    assert entry["counts"] == {"placed": 1, "rejected": 1, "unknown": 0, "skipped": 1, "expired": 0}
    assert entry["timings_ms"]["planned"] == 5.0
    assert entry["timings_ms"]["first_sent"] == 20.0
    assert entry["timings_ms"]["last_acknowledged"] == 30.0
    by_account = {a["account_id"]: a for a in entry["accounts"]}
    assert by_account[1]["outcome"] == "placed"
    assert by_account[1]["order_id"] == 77
    assert by_account[1]["sent_ms"] == 20.0
    assert by_account[2] == {**by_account[2], "outcome": "rejected", "reason": "venue-rejected"}
    assert by_account[3]["outcome"] == "skipped"
    listed = await client.get(f"/admin/strategies/{sid}/signals", headers=admin_headers)
    assert listed.json()["signals"][0]["signal_id"] == signal_id
    missing = await client.get("/admin/signals/nope", headers=admin_headers)
    assert missing.status_code == 404


def test_a_delayed_signal_shows_as_delayed_until_planned_and_expiries_show_their_stage() -> None:
    log = SignalLog(10)
    received = 1_800_000_000 * 10**9
    signal = Signal(ticker="MNQ1!", action="buy", delay_s=Decimal(30))
    log.apply(
        SignalReceived(
            event_id="e", ts_event=received, ts_init=received, signal_id="s1",
            strategy_id="st", signal=signal,
        )
    )  # fmt: skip
    parked = log.signal("s1")
    log.apply(
        SignalPlanned(
            event_id="p", ts_event=received + 31 * 10**9, ts_init=0, signal_id="s1",
            strategy_id="st", intents=0, batches=0, expired=1,
        )
    )  # fmt: skip
    log.apply(
        IntentExpired(
            event_id="x", ts_event=received + 31 * 10**9, ts_init=0, intent_id="s1-7",
            signal_id="s1", strategy_id="st", account_id=7, not_after_ns=received,
            stage="planning", text="planned 31.0 s after the signal's deadline",
        )
    )  # fmt: skip
    planned = log.signal("s1")

    assert parked is not None
    assert planned is not None
    assert parked["status"] == "delayed"
    assert parked["due_ns"] == received + 30 * 10**9
    assert planned["status"] == "done"
    assert planned["counts"]["expired"] == 1
    assert planned["accounts"][0]["outcome"] == "expired"
    assert planned["accounts"][0]["reason"].startswith("planned 31.0 s")
