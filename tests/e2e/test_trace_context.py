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
            # the sender's trace is the signal's: answered, and in the signal log (ADR-0070)
            assert resp.json()["trace_id"] == TRACE_ID
            logged = await http.get(
                f"{system.endpoints.ingest}/admin/signals/{resp.json()['id']}",
                headers={"Authorization": f"Bearer {system.endpoints.admin_token}"},
            )
            assert logged.json()["trace_id"] == TRACE_ID
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


async def test_a_webhook_without_traceparent_starts_a_trace_even_with_tracing_off(
    system: RunningSystem,
) -> None:
    """TradingView sends no traceparent: the signal still gets a trace id, and it travels."""
    seeded = await seed(system.endpoints, logins=1, accounts_per_login=1)
    bus = await Bus.connect(system.nats_url, "trace-test")
    carried: list[str] = []

    async def record(msg: Msg) -> None:
        carried.append((msg.headers or {}).get("traceparent", ""))

    await bus.nc.subscribe("signals.>", cb=record)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            first = await http.post(seeded.webhook_url, json={"ticker": "MNQ1!", "action": "buy"})
            second = await http.post(seeded.webhook_url, json={"ticker": "MNQ1!", "action": "sell"})
        trace_ids = {first.json()["trace_id"], second.json()["trace_id"]}
        assert len(trace_ids) == 2  # one trace per webhook
        assert all(len(t) == 32 and int(t, 16) for t in trace_ids)
        await eventually(lambda: len(carried) == 2, what="both signals on the bus")
        assert {traceparent.split("-")[1] for traceparent in carried} == trace_ids
    finally:
        await bus.close()
