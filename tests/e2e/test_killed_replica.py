"""A replica killed (SIGKILL) mid-signal: the survivor takes its shards over and every account
still gets exactly one order — the ones the dead replica had sent are found by clOrdId."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import nats
import pytest
import pytest_asyncio

from phalanx_bench.seed import front_month, seed
from phalanx_bench.system import System
from phalanx_common import subjects
from phalanx_testing.kv_contents import bucket_entries
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]


@pytest_asyncio.fixture
async def system() -> AsyncIterator[System]:
    running = System(
        executors=2,
        shards=4,
        extra_env={
            "PHALANX_LEASE_TTL_S": "2",
            "PHALANX_LEASE_RENEW_S": "0.5",
            "PHALANX_EXEC_ACK_WAIT_S": "3",
            "PHALANX_RECONCILE_GRACE_S": "2",
            "PHALANX_CLAIM_LEASE_S": "3",  # a killed owner's claims are free 3 s after it died
            "PHALANX_LOG_LEVEL": "INFO",
        },
    )
    try:  # a start that fails half-way still stops what it started
        await asyncio.to_thread(running.start)
        yield running
    finally:
        await asyncio.to_thread(running.stop)


async def _claims(nats_url: str) -> list[dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        entries = await bucket_entries(nc, subjects.Buckets.INTENTS.name)
        return [msgspec.json.decode(value or b"{}") for value in entries.values()]
    finally:
        await nc.close()


async def test_a_killed_replica_leaves_no_account_without_an_order_and_none_with_two(
    system: System,
) -> None:
    assert system.nats is not None
    endpoints = system.endpoints
    seeded = await seed(endpoints, logins=8, accounts_per_login=3)
    async with httpx.AsyncClient(timeout=30) as http:

        async def connected() -> bool:
            total = 0
            for ordinal in (0, 1):
                health = await http.get(system.executor_url(ordinal) + "/healthz")
                total += int(health.json()["logins_connected"])
            return total == 8

        await eventually(connected, timeout=60, what="8 logins connected over 2 replicas")
        (
            await http.post(
                endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": 21000}
            )
        ).raise_for_status()
        # Every venue response now takes 1.5 s: orders are accepted at once, their answers late.
        (
            await http.post(endpoints.sim + "/admin/faults", json={"latencyMs": 1500})
        ).raise_for_status()
        body = {"ticker": "MNQ1!", "action": "buy", "quantity": 1, "time": "kill-test"}
        assert (await http.post(seeded.webhook_url, json=body)).status_code == 200

        async def replica_1_in_flight() -> bool:
            claims = await _claims(system.nats.url if system.nats else "")
            return any(c["owner"].endswith("-r1") and c["state"] == "claimed" for c in claims)

        await eventually(replica_1_in_flight, timeout=30, what="replica 1 sending")
        system.kill("executor-1")
        (await http.delete(endpoints.sim + "/admin/faults")).raise_for_status()

        async def every_account_has_one_order() -> bool:
            for account in seeded.account_ids:
                orders = (
                    await http.get(f"{endpoints.sim}/admin/orders?accountId={account}")
                ).json()
                if len([o for o in orders if o.get("parentId") is None]) != 1:
                    return False
            return True

        await eventually(every_account_has_one_order, timeout=90, interval=0.5)
        claims = await _claims(system.nats.url)
        assert len(claims) == 24
        assert {c["state"] for c in claims} == {"accepted"}
        stats = (await http.get(endpoints.sim + "/admin/stats")).json()
        assert stats["placeOrder"] + stats["placeOso"] == 24  # never a second order
