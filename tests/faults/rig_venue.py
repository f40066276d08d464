"""Rig of the venue-side fault tests: the whole system as processes (bench's ``System``) and
the test's view of it — webhooks in, and what the simulated venue, the intents bucket and the
signal log say came out.

Every check follows accepted signals to the orders at the simulator (``/admin/orders``,
``/admin/violations``, ``/admin/connects``, ``/admin/requests``); a 2xx alone proves nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats

from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_bench.system import System
from phalanx_common import subjects
from phalanx_testing.kv_contents import bucket_entries

__all__ = ["PRICE", "VenueRig", "running_system", "until"]

PRICE = 21000
FINAL_CLAIMS = frozenset({"accepted", "rejected", "expired"})
UNSETTLED = frozenset({"pending", "unknown"})


@asynccontextmanager
async def running_system(
    log_dir: Path, extra_env: dict[str, str], executors: int = 1, shards: int = 8
) -> AsyncIterator[System]:
    """Every service as its own process on free loopback ports; stopped (by pid) at the end."""
    system = System(executors=executors, shards=shards, log_dir=log_dir, extra_env=extra_env)
    try:
        await asyncio.to_thread(system.start)
        yield system
    finally:
        await asyncio.to_thread(system.stop)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.2)


def epoch(iso: str) -> float:
    """The simulator's ``2025-01-31T14:03:07.123Z`` as epoch seconds."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class VenueRig:
    """Seeded logins and accounts of one strategy, and what the venue saw of them."""

    def __init__(self, system: System, http: httpx.AsyncClient, seeded: SeededStrategy) -> None:
        self.system = system
        self.http = http
        self.seeded = seeded
        self.sim = system.endpoints.sim
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}

    @classmethod
    async def seeded_with(
        cls,
        system: System,
        http: httpx.AsyncClient,
        logins: int,
        accounts_per_login: int,
        connect_timeout_s: float = 90,
    ) -> VenueRig:
        """Seed logins, wait until every login's socket is up and the planner knows every
        subscription; the strategy's deadlines are far beyond the run (budgets make intents
        wait, they must not expire)."""
        seeded = await seed(system.endpoints, logins=logins, accounts_per_login=accounts_per_login)
        rig = cls(system, http, seeded)
        await until(
            lambda: rig.authorized_logins_at_least(logins),
            connect_timeout_s,
            f"{logins} logins authorized at the venue",
        )
        resp = await http.post(
            f"{rig.sim}/admin/prices", json={"symbol": front_month(), "price": PRICE}
        )
        resp.raise_for_status()
        resp = await http.patch(
            f"{system.endpoints.ingest}/admin/strategies/{seeded.strategy_id}",
            json={"max_entry_age_s": 3600, "max_exit_age_s": 3600, "rate_limit_per_min": 10_000},
            headers=rig.admin,
        )
        resp.raise_for_status()

        async def planned() -> bool:
            body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
            entry = await rig.outcome(await rig.post_signal(body), timeout_s=30)
            return [a["outcome"] for a in entry["accounts"]] == ["skipped"] * rig.accounts

        await until(planned, 60, "every subscription reached the planner")
        return rig

    async def second_strategy(self, account_ids: list[int]) -> VenueRig:
        """Another strategy of the same logins, subscribed by ``account_ids`` only."""
        ingest = self.system.endpoints.ingest
        resp = await self.http.post(
            f"{ingest}/admin/strategies", json={"name": "second"}, headers=self.admin
        )
        resp.raise_for_status()
        created = resp.json()
        strategy_id = str(created["strategy_id"])
        resp = await self.http.post(
            f"{ingest}/admin/strategies/{strategy_id}/subscriptions:bulk",
            json={"account_ids": account_ids},
            headers=self.admin,
        )
        resp.raise_for_status()
        resp = await self.http.patch(
            f"{ingest}/admin/strategies/{strategy_id}",
            json={"max_entry_age_s": 3600, "max_exit_age_s": 3600, "rate_limit_per_min": 10_000},
            headers=self.admin,
        )
        resp.raise_for_status()
        seeded = SeededStrategy(
            strategy_id=strategy_id,
            webhook_url=str(created["webhook_url"]),
            account_ids=account_ids,
            logins=self.seeded.logins,
        )
        other = VenueRig(self.system, self.http, seeded)

        async def planned() -> bool:
            body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
            entry = await other.outcome(await other.post_signal(body), timeout_s=30)
            return [a["outcome"] for a in entry["accounts"]] == ["skipped"] * other.accounts

        await until(planned, 60, "the second strategy's subscriptions reached the planner")
        return other

    @property
    def accounts(self) -> int:
        return len(self.seeded.account_ids)

    # ------------------------------------------------------------------ the webhook side

    async def post_signal(self, body: dict[str, Any]) -> str:
        """Post a webhook; it must be accepted (2xx, not a duplicate). Returns the signal id."""
        resp = await self.http.post(self.seeded.webhook_url, json=body)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert not answer.get("duplicate", False), answer
        return str(answer["id"])

    async def outcome(self, signal_id: str, timeout_s: float = 90) -> dict[str, Any]:
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
                    and len(accounts) == self.accounts
                    and all(a["outcome"] not in UNSETTLED for a in accounts)
                ):
                    return entry
            await asyncio.sleep(0.2)
        unsettled = [a for a in entry.get("accounts", []) if a["outcome"] in UNSETTLED]
        raise AssertionError(
            f"signal {signal_id}: no final outcome for every account after {timeout_s} s: "
            f"status {entry.get('status')}, counts {entry.get('counts')}, unsettled "
            f"{unsettled[:10]} (logs in {self.system.log_dir})"
        )

    # ------------------------------------------------------------------ the venue side

    async def venue(self, path: str, **params: Any) -> Any:
        resp = await self.http.get(f"{self.sim}/admin/{path}", params=params)
        resp.raise_for_status()
        return resp.json()

    async def authorized_logins_at_least(self, count: int) -> bool:
        users = {c["userId"] for c in (await self.venue("connects", kind="authorize"))["connects"]}
        return len(users) >= count

    async def orders_by_account(self) -> dict[int, list[dict[str, Any]]]:
        """Every account's orders at the venue (top-level orders and bracket legs)."""
        found: dict[int, list[dict[str, Any]]] = {}
        for account in self.seeded.account_ids:
            found[account] = await self.venue("orders", accountId=account)
        return found

    @staticmethod
    def duplicate_cl_ord_ids(orders: dict[int, list[dict[str, Any]]]) -> dict[str, int]:
        """clOrdIds the venue holds more than once (an order placed twice)."""
        seen = Counter(
            str(o["clOrdId"]) for found in orders.values() for o in found if o.get("clOrdId")
        )
        return {c: n for c, n in seen.items() if n > 1}

    @staticmethod
    def entries(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """An account's top-level orders by id (entries and exits, not bracket legs)."""
        return sorted((o for o in orders if o.get("parentId") is None), key=lambda o: int(o["id"]))

    async def violations(self) -> dict[str, Any]:
        found: dict[str, Any] = await self.venue("violations")
        return found

    # ------------------------------------------------------------------ the record

    async def bucket(self, bucket: str) -> dict[str, dict[str, Any]]:
        """Every entry of a KV bucket, decoded."""
        assert self.system.nats is not None
        nc = await nats.connect(self.system.nats.url)
        try:
            entries = await bucket_entries(nc, bucket)
            return {key: msgspec.json.decode(value or b"{}") for key, value in entries.items()}
        finally:
            await nc.close()

    async def open_claims(self) -> dict[str, dict[str, Any]]:
        """Intents not in a known final state (accepted, rejected, expired)."""
        claims = await self.bucket(subjects.Buckets.INTENTS.name)
        return {k: c for k, c in claims.items() if c.get("state") not in FINAL_CLAIMS}

    async def claims(self) -> dict[str, dict[str, Any]]:
        return await self.bucket(subjects.Buckets.INTENTS.name)
