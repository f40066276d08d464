"""Fault: the venue sends ``shutdown`` and drops every socket at once, for many logins.

The whole system runs as processes: one executor replica holds one socket per login (LOGINS
logins x 1 account). The simulator tells every socket ``shutdown`` and closes them all at once
(``POST /admin/shutdown``), and a signal for every account is posted right after.

What must hold:

- reconnects spread out: the simulator's connect log (``/admin/connects``) times every
  successful ``authorize``; the reconnects are not one burst — no 100 ms bucket holds half of
  them, and they cover several buckets (the pool's full-jitter backoff spreads them over its
  window, and its connect semaphore bounds how many run at once). The rate is measured and
  printed, never asserted;
- every login is connected again by itself;
- nothing lost or doubled: each account exactly one order, no clOrdId twice, every intent
  accepted, every outcome ``placed``.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.faults.rig_venue import VenueRig, running_system, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LOGINS = 500
BUCKET_S = 0.1


async def test_shutdown_of_every_socket_reconnects_spread_out_and_loses_no_order(
    tmp_path: Path,
) -> None:
    env = {"PHALANX_LOG_LEVEL": "WARNING"}
    async with (
        running_system(tmp_path, env) as system,
        httpx.AsyncClient(timeout=60) as http,
    ):
        rig = await VenueRig.seeded_with(
            system, http, logins=LOGINS, accounts_per_login=1, connect_timeout_s=180
        )
        dropped_at = time.time()
        told = await http.post(
            f"{rig.sim}/admin/shutdown", json={"reasonCode": "Maintenance", "reason": "restart"}
        )
        told.raise_for_status()
        signal_id = await rig.post_signal({"ticker": "MNQ1!", "action": "buy", "quantity": 1})
        entry = await rig.outcome(signal_id, timeout_s=120)

        async def reconnected() -> bool:
            found = await rig.venue("connects", kind="authorize", since=dropped_at)
            return len({c["userId"] for c in found["connects"]}) >= LOGINS

        await until(reconnected, 60, "every login authorized again")
        connects = (await rig.venue("connects", kind="authorize", since=dropped_at))["connects"]
        orders = await rig.orders_by_account()
        open_claims = await rig.open_claims()
        violations = await rig.violations()

    times = sorted(float(c["at"]) for c in connects)
    buckets = Counter(int((t - dropped_at) / BUCKET_S) for t in times)
    per_second = Counter(int(t - dropped_at) for t in times)
    outcomes = Counter(a["outcome"] for a in entry["accounts"])
    report = (
        f"{told.json()['told']} sockets told shutdown; {len(times)} re-authorizations over "
        f"{times[-1] - times[0]:.2f} s (first {times[0] - dropped_at:.2f} s after the drop), "
        f"busiest 100 ms: {max(buckets.values())}, busiest second: {max(per_second.values())}, "
        f"{len(buckets)} buckets of 100 ms; outcomes {outcomes}; "
        f"violations {violations['count']}; logs in {system.log_dir}"
    )
    print(report)  # the measured result
    assert told.json()["told"] >= LOGINS, report
    # spread out: not one burst
    assert max(buckets.values()) < len(times) / 2, report
    assert len(buckets) >= 3, report
    # nothing lost or doubled
    assert [a["outcome"] for a in entry["accounts"]] == ["placed"] * LOGINS, report
    assert sorted(len(rig.entries(o)) for o in orders.values()) == [1] * LOGINS, report
    assert rig.duplicate_cl_ord_ids(orders) == {}, report
    assert open_claims == {}, report
    assert violations["count"] == 0, report
