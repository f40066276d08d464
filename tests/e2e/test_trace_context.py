"""One W3C trace follows a signal from the webhook to the order outcome, through NATS headers."""

from __future__ import annotations

import httpx
import pytest
from nats.aio.msg import Msg

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import seed
from phalanx_common.bus import Bus
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_senders_trace_id_reaches_signal_batch_and_order_events(
    system: RunningSystem,
) -> None:
    seeded = await seed(system.endpoints, logins=1, accounts_per_login=2)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 1)
    bus = await Bus.connect(system.nats_url, "trace-test")
    seen: dict[str, str] = {}

    async def record(msg: Msg) -> None:
        seen[msg.subject] = (msg.headers or {}).get("traceparent", "")

    for subject in ("signals.>", "exec.>", "orders.>"):
        await bus.nc.subscribe(subject, cb=record)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(
                seeded.webhook_url,
                json={"ticker": "MNQ1!", "action": "buy", "quantity": 1},
                headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
            )
            assert resp.status_code == 200
        accounts = [f"orders.{a}" for a in seeded.account_ids]
        await eventually(lambda: all(s in seen for s in accounts), what="both order outcomes")
    finally:
        await bus.close()
    signal_subjects = [s for s in seen if s.startswith("signals.")]
    exec_subjects = [s for s in seen if s.startswith("exec.")]
    assert signal_subjects
    assert exec_subjects
    for subject in signal_subjects + exec_subjects + accounts:
        assert seen[subject].split("-")[1] == TRACE_ID, (subject, seen[subject])
