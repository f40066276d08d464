"""Fault: the venue loses 10% of its answers after accepting, and answers 5xx to 5% of requests.

The whole system runs as processes; 4 logins x 5 accounts trade three signals (entry with an
absolute bracket, exit, opposite entry: 60 placements). The simulator draws the faults per
request (``dropRate`` 0.1 on accepted orders, ``errorRate`` 0.05 on every socket request —
orders, clOrdId lookups, syncs — with status 503 in the response frame's ``s``, as Tradovate
reports a failed request; the first two of each are certain, so no run is without them). A lost
answer and a 5xx on an order are both "unknown" to the executor (ADR-0055): it must find the
order by clOrdId before anything is sent again.

What must hold: no clOrdId twice at the venue (no order placed twice), each account exactly the
orders its signals ask for, every intent in the intents bucket in a known final state
(accepted, rejected, expired), every signal-log outcome final, and the faults did happen (the
simulator counts the answers it lost and the 5xx it gave).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.faults.rig_venue import PRICE, VenueRig, running_system

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LOGINS, ACCOUNTS_PER_LOGIN = 4, 5
DROP_RATE, ERROR_RATE = 0.10, 0.05


def _signals() -> list[dict[str, Any]]:
    bracket_buy = {"takeProfit": {"limitPrice": PRICE + 40}, "stopLoss": {"stopPrice": PRICE - 20}}
    bracket_sell = {"takeProfit": {"limitPrice": PRICE - 40}, "stopLoss": {"stopPrice": PRICE + 20}}
    return [
        {"ticker": "MNQ1!", "action": "buy", "quantity": 1, **bracket_buy},
        {"ticker": "MNQ1!", "action": "exit"},
        {"ticker": "MNQ1!", "action": "sell", "quantity": 1, **bracket_sell},
    ]


async def test_lost_answers_and_5xx_never_double_an_order_and_every_intent_ends_known(
    tmp_path: Path,
) -> None:
    env = {
        "PHALANX_REQUEST_TIMEOUT_S": "2",
        "PHALANX_RECONCILE_GRACE_S": "2",
        "PHALANX_LOG_LEVEL": "INFO",
    }
    async with (
        running_system(tmp_path, env) as system,
        httpx.AsyncClient(timeout=30) as http,
    ):
        rig = await VenueRig.seeded_with(
            system, http, logins=LOGINS, accounts_per_login=ACCOUNTS_PER_LOGIN
        )
        # drawn per request; the first two of each are certain, so the run always has both
        faults = {
            "dropRate": DROP_RATE,
            "errorRate": ERROR_RATE,
            "errorStatus": 503,
            "seed": 12,
            "dropResponses": 2,
            "errorCount": 2,
        }
        (await http.post(f"{rig.sim}/admin/faults", json=faults)).raise_for_status()

        outcomes: list[str] = []
        for body in _signals():
            entry = await rig.outcome(await rig.post_signal(body), timeout_s=120)
            outcomes += [a["outcome"] for a in entry["accounts"]]
        (await http.delete(f"{rig.sim}/admin/faults")).raise_for_status()

        stats = await rig.venue("stats")
        orders = await rig.orders_by_account()
        claims = await rig.claims()
        open_claims = await rig.open_claims()
        violations = await rig.violations()

    report = (
        f"faults: {stats['faultDrops']} answers lost, {stats['faultErrors']} x 5xx; "
        f"outcomes {sorted(set(outcomes))}; open claims {list(open_claims.values())[:5]}; "
        f"violations {violations['count']}; logs in {system.log_dir}"
    )
    print(report)  # the measured result
    assert stats["faultDrops"] > 0, report  # the faults happened
    assert stats["faultErrors"] > 0, report
    # nothing doubled: no clOrdId twice, and each account exactly its three orders in order
    assert rig.duplicate_cl_ord_ids(orders) == {}, report
    expected = [("Buy", 2), ("Sell", 0), ("Sell", 2)]  # (action, bracket legs)
    wrong = {}
    for account, found in orders.items():
        legs = {int(o["parentId"]) for o in found if o.get("parentId") is not None}
        seen = [
            (o["action"], sum(1 for leg in found if leg.get("parentId") == o["id"]))
            for o in rig.entries(found)
        ]
        if seen != expected or len(legs) != 2:
            wrong[account] = seen
    assert not wrong, f"{wrong} {report}"
    # every intent ends known: the bucket holds it final, the signal log says placed
    assert len(claims) == 3 * rig.accounts, report
    assert open_claims == {}, report
    assert outcomes == ["placed"] * (3 * rig.accounts), report
    assert violations["count"] == 0, report
