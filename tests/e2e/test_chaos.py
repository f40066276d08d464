"""Chaos: replicas come and go under tight budgets, venue latency and dropped responses, and
every account still ends with exactly the orders its signals ask for, in signal order.

Three executor replicas (separate processes) serve 10 logins x 5 accounts — scaled down from
the issue's 20 x 10 so the run stays within about four minutes on two busy cores; the shape
(several logins per shard, several accounts per login, budget-bound fan-outs) is the same.
Budgets are tight: the venue allows 6 requests per login in any 2 s and the executors share
4 per 2.5 s, so every fan-out of a login (5 to 10 requests) waits for permits. The venue
answers every request 150 ms late and loses the answer to 3 order placements of each entry
signal (~5% of the entry placements; the orders exist, the executor must find them by
clOrdId).

30 signals, sent one at a time (the next only once every account has a final outcome of the
previous one, so each account's expected sequence is well defined): six cycles of entry with an
absolute bracket, exit, opposite entry, reversal, exit (sides alternate per cycle). Meanwhile
replica 1 is SIGKILLed, replica 3 joins, and replica 2 is stopped gracefully (SIGTERM).

At the end: each account's orders at the venue equal the expected sequence (entries with their
two bracket legs, closing orders), no clOrdId twice, no violation, every account flat with no
working order, every intent terminal in the intents bucket, every account queue empty and every
signal-log outcome final (an ``unknown`` that never resolves fails the wait).

In the default run since the stall it once showed was found and fixed (a lease renewer that
lost a cancellation kept an intent alive forever; ADR-0050); marker ``chaos`` to run or skip it
alone (``pytest -m chaos`` / ``-m 'not chaos'``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import pytest
import pytest_asyncio

from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_bench.system import System
from phalanx_common import subjects
from phalanx_testing.kv_contents import bucket_entries

# The full size is 20 x 10: PHALANX_CHAOS_LOGINS=20 PHALANX_CHAOS_ACCOUNTS=10.
LOGINS = int(os.environ.get("PHALANX_CHAOS_LOGINS", "10"))
ACCOUNTS_PER_LOGIN = int(os.environ.get("PHALANX_CHAOS_ACCOUNTS", "5"))
ACCOUNTS = LOGINS * ACCOUNTS_PER_LOGIN

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(120 + 6 * ACCOUNTS),  # 420 s at the default size
]
PRICE = 21000
CYCLES = 6  # x 5 signals = 30
DROPS_PER_ENTRY = max(3, ACCOUNTS // 20)  # ~5% of an entry signal's placements lose their answer
LATENCY_MS = 150
SIGNAL_TIMEOUT_S = 90.0
# Replicas change during reversals (the longest fan-outs: two requests per account), once
# some accounts of the signal have their outcome and others not yet.
KILL_AT, JOIN_AT, STOP_AT = 8, 13, 18

# An order at the venue as compared: (action, orderType, qty, bracket legs as (action, type,
# limit price, stop price)).
Leg = tuple[str, str, float | None, float | None]
OrderView = tuple[str, str, int, tuple[Leg, ...]]


@pytest_asyncio.fixture
async def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[System]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    running = System(
        executors=3,
        spare_executors=1,
        shards=8,
        log_dir=tmp_path,
        extra_env={
            "PHALANX_SIM_LIMIT_PER_MINUTE": "6",
            "PHALANX_SIM_LIMIT_MINUTE_S": "2",
            "PHALANX_LOGIN_WINDOWS": "[[4, 2.5]]",
            "PHALANX_REQUEST_TIMEOUT_S": "3",
            "PHALANX_RECONCILE_GRACE_S": "3",
            "PHALANX_LEASE_TTL_S": "2",
            "PHALANX_LEASE_RENEW_S": "0.5",
            "PHALANX_EXEC_ACK_WAIT_S": "5",
            "PHALANX_CLAIM_LEASE_S": "3",
            "PHALANX_LOG_LEVEL": "INFO",
        },
    )
    try:  # a start that fails half-way still stops what it started
        await asyncio.to_thread(running.start)
        yield running
    finally:
        await asyncio.to_thread(running.stop)


def _opposite(action: str) -> str:
    return "Sell" if action == "Buy" else "Buy"


def _bracket(side: str) -> dict[str, Any]:
    """Absolute take-profit and stop 40 / 20 points away (never reached at the fixed price)."""
    if side == "buy":
        return {"takeProfit": {"limitPrice": PRICE + 40}, "stopLoss": {"stopPrice": PRICE - 20}}
    return {"takeProfit": {"limitPrice": PRICE - 40}, "stopLoss": {"stopPrice": PRICE + 20}}


def signals() -> list[dict[str, Any]]:
    """Entry, exit, opposite entry, reversal, exit; the sides swap every cycle."""
    bodies: list[dict[str, Any]] = []
    for cycle in range(CYCLES):
        side, other = ("buy", "sell") if cycle % 2 == 0 else ("sell", "buy")
        for action in (side, "exit", other, side, "exit"):
            body: dict[str, Any] = {"ticker": "MNQ1!", "action": action}
            if action != "exit":
                body |= {"quantity": 1, **_bracket(action)}
            body["extras"] = {"chaos": len(bodies)}  # no two bodies alike (no repeats)
            bodies.append(body)
    return bodies


def expected_orders(bodies: list[dict[str, Any]]) -> list[OrderView]:
    """The orders one account gets (TradersPost semantics, side swapping on, adding off)."""
    position = 0
    orders: list[OrderView] = []
    for body in bodies:
        action = str(body["action"])
        if action == "exit":
            if position:
                orders.append(("Sell" if position > 0 else "Buy", "Market", 1, ()))
                position = 0
            continue
        side = 1 if action == "buy" else -1
        venue_side = "Buy" if side > 0 else "Sell"
        if position == side:
            continue  # already in position: refused
        if position == -side:
            orders.append((venue_side, "Market", 1, ()))  # the reversal's liquidation
        exit_side = _opposite(venue_side)
        legs = sorted(
            [
                (exit_side, "Limit", float(body["takeProfit"]["limitPrice"]), None),
                (exit_side, "Stop", None, float(body["stopLoss"]["stopPrice"])),
            ],
            key=str,
        )
        orders.append((venue_side, "Market", 1, tuple(legs)))
        position = side
    return orders


def venue_orders(orders: list[dict[str, Any]]) -> list[OrderView]:
    """An account's venue orders as compared: top-level orders by id, with their legs."""
    legs: dict[int, list[Leg]] = {}
    for o in orders:
        if o.get("parentId") is not None:
            legs.setdefault(int(o["parentId"]), []).append(
                (str(o["action"]), str(o["orderType"]), o.get("price"), o.get("stopPrice"))
            )
    return [
        (
            str(o["action"]),
            str(o["orderType"]),
            int(o["orderQty"]),
            tuple(sorted(legs.get(o["id"], []), key=str)),
        )
        for o in sorted(orders, key=lambda o: int(o["id"]))
        if o.get("parentId") is None
    ]


class Rig:
    """The test's view of the running system."""

    def __init__(self, system: System, http: httpx.AsyncClient, seeded: SeededStrategy) -> None:
        self.system = system
        self.http = http
        self.seeded = seeded
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}

    async def post_signal(self, body: dict[str, Any]) -> str:
        resp = await self.http.post(self.seeded.webhook_url, json=body)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert not answer.get("duplicate", False), answer
        return str(answer["id"])

    async def outcome(self, signal_id: str, timeout_s: float = SIGNAL_TIMEOUT_S) -> dict[str, Any]:
        """The signal log entry once every account has a final outcome."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"
        deadline = time.monotonic() + timeout_s
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            resp = await self.http.get(url, headers=self.admin)
            if resp.status_code == 200:
                entry = resp.json()
                accounts = entry["accounts"]
                if (
                    entry["status"] == "done"
                    and len(accounts) == ACCOUNTS
                    and all(a["outcome"] not in ("pending", "unknown") for a in accounts)
                ):
                    return entry
            await asyncio.sleep(0.2)
        unresolved = [
            a for a in entry.get("accounts", []) if a["outcome"] in ("pending", "unknown")
        ]
        self.system.dump_tasks()  # where each replica waits, into its log
        await asyncio.sleep(1.0)
        raise AssertionError(
            f"signal {signal_id} has no final outcome for every account after {timeout_s} s: "
            f"status {entry.get('status')}, counts {entry.get('counts')}, unresolved "
            f"{unresolved[:10]} (logs in {self.system.log_dir})"
        )

    async def under_way(self, signal_id: str) -> None:
        """Wait until some accounts of the signal have their outcome and others not yet."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            resp = await self.http.get(url, headers=self.admin)
            if resp.status_code == 200:
                decided = sum(
                    1 for a in resp.json()["accounts"] if a["outcome"] not in ("pending", "unknown")
                )
                assert decided < ACCOUNTS, "the fan-out ended before the replica change"
                if decided:
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"signal {signal_id} had no outcome within 30 s")

    async def drops_left(self) -> int:
        resp = await self.http.get(self.system.endpoints.sim + "/admin/faults")
        resp.raise_for_status()
        return sum(int(f.get("dropResponses", 0)) for f in resp.json())

    async def faults(self, drops: int) -> None:
        body = {"latencyMs": LATENCY_MS, "dropResponses": drops}
        resp = await self.http.post(self.system.endpoints.sim + "/admin/faults", json=body)
        resp.raise_for_status()

    async def connected(self, ordinals: list[int]) -> int:
        total = 0
        for ordinal in ordinals:
            health = await self.http.get(self.system.executor_url(ordinal) + "/healthz")
            total += int(health.json()["logins_connected"])
        return total


async def _bucket(nats_url: str, bucket: str) -> dict[str, dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        entries = await bucket_entries(nc, bucket)
        return {key: msgspec.json.decode(value or b"{}") for key, value in entries.items()}
    finally:
        await nc.close()


async def _until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.25)


async def _prepare(rig: Rig, http: httpx.AsyncClient, endpoints: Any, strategy_id: str) -> None:
    """The price, deadlines far beyond the run, and every subscription known to the planner."""
    symbol = front_month()
    resp = await http.post(endpoints.sim + "/admin/prices", json={"symbol": symbol, "price": PRICE})
    resp.raise_for_status()
    # Deadlines far beyond the run: budgets make intents wait, they must not expire.
    resp = await http.patch(
        f"{endpoints.ingest}/admin/strategies/{strategy_id}",
        json={"max_entry_age_s": 3600, "max_exit_age_s": 3600, "rate_limit_per_min": 10_000},
        headers=rig.admin,
    )
    resp.raise_for_status()

    async def subscriptions_planned() -> bool:
        body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
        entry = await rig.outcome(await rig.post_signal(body), timeout_s=30)
        return [a["outcome"] for a in entry["accounts"]] == ["skipped"] * ACCOUNTS

    await _until(subscriptions_planned, 60, "every subscription reached the planner")


async def _venue_accounts(
    http: httpx.AsyncClient, sim_url: str, account_ids: list[int], expected: list[OrderView]
) -> tuple[
    dict[int, tuple[list[OrderView], list[OrderView]]], list[int], Counter[str], dict[int, Any]
]:
    """Each account at the venue: orders other than expected (and which of those only in
    another order), every clOrdId, and what is not flat."""
    wrong: dict[int, tuple[list[OrderView], list[OrderView]]] = {}
    out_of_order: list[int] = []
    cl_ord_ids: Counter[str] = Counter()
    not_flat: dict[int, Any] = {}
    for account in account_ids:
        orders = (await http.get(f"{sim_url}/admin/orders?accountId={account}")).json()
        cl_ord_ids.update(str(o["clOrdId"]) for o in orders if o.get("clOrdId"))
        seen = venue_orders(orders)
        if seen != expected:
            wrong[account] = (seen, expected)
            if Counter(seen) == Counter(expected):
                out_of_order.append(account)
        working = [o["id"] for o in orders if o["ordStatus"] in ("Working", "Suspended")]
        positions = (await http.get(f"{sim_url}/admin/positions?accountId={account}")).json()
        net = [p["netPos"] for p in positions if p.get("netPos")]
        if working or net:
            not_flat[account] = {"working": working, "netPos": net}
    return wrong, out_of_order, cl_ord_ids, not_flat


async def test_replicas_killed_joining_and_stopping_leave_every_account_exactly_its_orders(
    system: System,
) -> None:
    assert system.nats is not None
    endpoints = system.endpoints
    seeded = await seed(endpoints, logins=LOGINS, accounts_per_login=ACCOUNTS_PER_LOGIN)
    async with httpx.AsyncClient(timeout=30) as http:
        rig = Rig(system, http, seeded)

        async def all_connected() -> bool:
            return await rig.connected([0, 1, 2]) == LOGINS

        await _until(all_connected, 90, f"{LOGINS} logins connected over 3 replicas")
        await _prepare(rig, http, endpoints, seeded.strategy_id)

        bodies = signals()
        entries: list[dict[str, Any]] = []
        stopping: asyncio.Future[int] | None = None
        for number, body in enumerate(bodies):
            await rig.faults(DROPS_PER_ENTRY if body["action"] != "exit" else 0)
            signal_id = await rig.post_signal(body)
            if number in (KILL_AT, JOIN_AT, STOP_AT):
                await rig.under_way(signal_id)
            if number == KILL_AT:
                system.kill("executor-1")
            elif number == JOIN_AT:
                assert system.add_executor() == "executor-3"
            elif number == STOP_AT:
                stopping = asyncio.ensure_future(asyncio.to_thread(system.terminate, "executor-2"))
            entries.append(await rig.outcome(signal_id))
            # the lost answers were all spent on this signal's placements (and resolved)
            assert await rig.drops_left() == 0
        assert stopping is not None
        assert await stopping == 0  # the graceful stop ended cleanly
        (await http.delete(endpoints.sim + "/admin/faults")).raise_for_status()

        # -- the venue: each account's orders, in order, exactly as the signals ask
        expected = expected_orders(bodies)
        wrong, out_of_order, cl_ord_ids, not_flat = await _venue_accounts(
            http, endpoints.sim, seeded.account_ids, expected
        )
        duplicates = {c: n for c, n in cl_ord_ids.items() if n > 1}
        violations = (await http.get(endpoints.sim + "/admin/violations")).json()

        # -- the record: every intent terminal, every account queue empty, every outcome final
        claims = await _bucket(system.nats.url, subjects.Buckets.INTENTS.name)
        open_claims = {
            k: c for k, c in claims.items() if c["state"] not in ("accepted", "rejected", "expired")
        }
        queues = await _bucket(system.nats.url, subjects.Buckets.ACCOUNT_ORDER.name)
        queued = {k: q["pending"] for k, q in queues.items() if q.get("pending")}
        outcomes = Counter(a["outcome"] for e in entries for a in e["accounts"])

        report = (
            f"accounts with other orders than expected: {len(wrong)} "
            f"(out of order: {out_of_order}); first: {next(iter(wrong.items()), None)}; "
            f"duplicate clOrdIds: {duplicates}; violations: {violations['count']} "
            f"{violations.get('recent', [])[:5]}; not flat: {not_flat}; open claims: "
            f"{list(open_claims.values())[:5]}; queued: {queued}; outcomes: {outcomes}; "
            f"logs in {system.log_dir}"
        )
        assert not wrong, report
        assert not duplicates, report
        assert violations["count"] == 0, report
        assert not not_flat, report
        assert not open_claims, report
        assert not queued, report
        # every intent of every signal was placed (no signal here is refused by the
        # semantics): no rejection, no expiry, no skip
        assert outcomes == Counter({"placed": len(bodies) * ACCOUNTS}), report
        assert len(claims) == len(bodies) * ACCOUNTS, report
