"""The rig of the token, penalty, repeat and restart fault tests: the whole system as processes.

:func:`fault_system` starts NATS, Redis, the simulator and every service as separate processes
(:class:`phalanx_bench.system.System`), seeds logins and accounts through the public APIs and
hands out a :class:`FaultRig`: what a test needs to send signals and to read what the venue,
the signal log, auth and the streams say. Every helper reads; no helper asserts.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nats

from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_bench.system import System
from phalanx_common.codec import decode_event
from phalanx_common.events import AnyEvent

__all__ = ["PRICE", "FaultRig", "fault_system", "restart", "stop", "until"]

PRICE = 21000
FINAL = frozenset({"placed", "rejected", "expired", "skipped"})


async def until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, pause_s: float = 0.2
) -> None:
    """Wait until ``check()`` is true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s: {what}")
        await asyncio.sleep(pause_s)


def stop(system: System, name: str, sig: signal.Signals, timeout_s: float = 30) -> int:
    """Send ``sig`` to one process of the system and wait for it; its exit code."""
    proc = system.procs[system.names.index(name)]
    proc.send_signal(sig)
    return proc.wait(timeout=timeout_s)


def restart(system: System, name: str, module: str, sig: signal.Signals) -> int:
    """Stop one process with ``sig`` and start it again (same settings, log appended).

    Returns the stopped process's exit code.
    """
    index = system.names.index(name)
    code = stop(system, name, sig)
    log = (system.log_dir / f"{name}.log").open("ab")
    system.procs[index] = subprocess.Popen(
        [sys.executable, "-m", module],
        env=system.base_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return code


class FaultRig:
    """The test's view of a running system with one seeded strategy."""

    def __init__(self, system: System, http: httpx.AsyncClient, seeded: SeededStrategy) -> None:
        self.system = system
        self.http = http
        self.seeded = seeded
        self.endpoints = system.endpoints
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
        self.user_ids: dict[str, int] = {}  # login id -> venue user id
        self.accounts_of: dict[str, list[int]] = {}  # login id -> account ids

    # -- set-up ---------------------------------------------------------------------------

    async def learn_users(self) -> None:
        """Map each seeded login to its venue user and accounts (from the simulator)."""
        users = (await self.http.get(self.endpoints.sim + "/admin/users")).json()
        by_name = {str(u["name"]).lower(): u for u in users}
        for login in self.seeded.logins:
            user = by_name[login]
            self.user_ids[login] = int(user["userId"])
            self.accounts_of[login] = [int(a["id"]) for a in user["accounts"]]

    async def strategy(self, **settings: Any) -> None:
        """Change the seeded strategy (deadlines, repeat window, rate limit)."""
        resp = await self.http.patch(
            f"{self.endpoints.ingest}/admin/strategies/{self.seeded.strategy_id}",
            json=settings,
            headers=self.admin,
        )
        resp.raise_for_status()

    async def set_price(self, price: float = PRICE) -> None:
        resp = await self.http.post(
            self.endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": price}
        )
        resp.raise_for_status()

    async def connected(self, ordinals: tuple[int, ...] = (0,)) -> int:
        """Logins with an authorized socket over the given executor replicas."""
        total = 0
        for ordinal in ordinals:
            try:
                health = await self.http.get(self.system.executor_url(ordinal) + "/healthz")
            except httpx.HTTPError:  # not listening yet
                continue
            total += int(health.json()["logins_connected"])
        return total

    async def ready(self, ordinals: tuple[int, ...] = (0,)) -> None:
        """Every login connected, the price set and every subscription known to the planner."""
        logins = len(self.seeded.logins)

        async def all_connected() -> bool:
            return await self.connected(ordinals) == logins

        await until(all_connected, 60, f"{logins} logins connected")
        await self.set_price()
        accounts = len(self.seeded.account_ids)

        async def planned() -> bool:
            body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
            entry = await self.outcome(await self.signal(body), timeout_s=30)
            return [a["outcome"] for a in entry["accounts"]] == ["skipped"] * accounts

        await until(planned, 60, "every subscription reached the planner")

    # -- signals --------------------------------------------------------------------------

    async def send(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(self.seeded.webhook_url, json=body)

    async def signal(self, body: dict[str, Any]) -> str:
        """Send a webhook that must be accepted as a new signal; its id."""
        resp = await self.send(body)
        if resp.status_code != 200 or resp.json().get("duplicate"):
            raise AssertionError(f"signal not accepted as new: {resp.status_code} {resp.text}")
        return str(resp.json()["id"])

    async def entry(self, signal_id: str) -> dict[str, Any]:
        resp = await self.http.get(
            f"{self.endpoints.ingest}/admin/signals/{signal_id}", headers=self.admin
        )
        return dict(resp.json()) if resp.status_code == 200 else {}

    async def outcome(self, signal_id: str, timeout_s: float = 60) -> dict[str, Any]:
        """The signal log entry once every account has a final outcome."""
        accounts = len(self.seeded.account_ids)
        entry: dict[str, Any] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            entry = await self.entry(signal_id)
            if (
                entry.get("status") == "done"
                and len(entry["accounts"]) == accounts
                and all(a["outcome"] in FINAL for a in entry["accounts"])
            ):
                return entry
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"signal {signal_id}: no final outcome on every account after {timeout_s:g} s: "
            f"{entry.get('status')} {entry.get('counts')} (logs in {self.system.log_dir})"
        )

    # -- the venue ------------------------------------------------------------------------

    async def orders(self, account_id: int) -> list[dict[str, Any]]:
        """The account's orders at the venue (top-level and bracket legs)."""
        resp = await self.http.get(f"{self.endpoints.sim}/admin/orders?accountId={account_id}")
        resp.raise_for_status()
        return list(resp.json())

    async def entries_at_venue(self) -> dict[int, int]:
        """Top-level orders (not bracket legs) per seeded account."""
        counts: dict[int, int] = {}
        for account in self.seeded.account_ids:
            orders = await self.orders(account)
            counts[account] = sum(1 for o in orders if o.get("parentId") is None)
        return counts

    async def venue_fills(self, account_id: int) -> list[dict[str, Any]]:
        resp = await self.http.get(f"{self.endpoints.sim}/admin/fills?accountId={account_id}")
        resp.raise_for_status()
        return list(resp.json())

    async def venue_book(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        """The venue's book: (account, contract) -> (net, bought, sold, fills)."""
        book: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        for account in self.seeded.account_ids:
            resp = await self.http.get(f"{self.endpoints.sim}/admin/positions?accountId={account}")
            resp.raise_for_status()
            fills = await self.venue_fills(account)
            for p in resp.json():
                contract = int(p["contractId"])
                count = sum(1 for f in fills if int(f["contractId"]) == contract)
                book[(account, contract)] = (
                    int(p["netPos"]),
                    int(p["bought"]),
                    int(p["sold"]),
                    count,
                )
        return book

    async def ledger_book(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        """The ledger's book (``GET /positions``), in the venue book's shape."""
        resp = await self.http.get(self.endpoints.ledger + "/positions")
        resp.raise_for_status()
        return {
            (int(p["account_id"]), int(p["contract_id"])): (
                int(p["net_pos"]),
                int(p["bought"]),
                int(p["sold"]),
                int(p["fill_count"]),
            )
            for p in resp.json()["positions"]
        }

    async def ledger_ready(self) -> bool:
        try:
            resp = await self.http.get(self.endpoints.ledger + "/readyz")
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def venue_positions(self) -> dict[int, int]:
        """Net position per seeded account at the venue (every contract summed)."""
        positions: dict[int, int] = {}
        for account in self.seeded.account_ids:
            resp = await self.http.get(f"{self.endpoints.sim}/admin/positions?accountId={account}")
            resp.raise_for_status()
            positions[account] = sum(int(p.get("netPos") or 0) for p in resp.json())
        return positions

    async def requests(self, user_id: int | None = None) -> list[dict[str, Any]]:
        """Requests the venue received (``None``: everyone's, also those without a user)."""
        query = f"?userId={user_id}" if user_id is not None else ""
        resp = await self.http.get(f"{self.endpoints.sim}/admin/requests{query}")
        resp.raise_for_status()
        return list(resp.json())

    async def violations(self) -> dict[str, Any]:
        resp = await self.http.get(self.endpoints.sim + "/admin/violations")
        resp.raise_for_status()
        return dict(resp.json())

    async def limits(self, user_id: int) -> dict[str, Any]:
        resp = await self.http.get(f"{self.endpoints.sim}/admin/limits?userId={user_id}")
        resp.raise_for_status()
        return dict(resp.json())

    async def fault(self, **fault: Any) -> None:
        resp = await self.http.post(self.endpoints.sim + "/admin/faults", json=fault)
        resp.raise_for_status()

    # -- auth and the streams -------------------------------------------------------------

    async def login(self, login_id: str) -> dict[str, Any]:
        resp = await self.http.get(
            f"{self.endpoints.auth}/admin/logins/{login_id}", headers=self.admin
        )
        resp.raise_for_status()
        return dict(resp.json())

    async def stream_events(self, stream: str, subject: str = ">") -> list[AnyEvent]:
        """Every event stored in ``stream`` (on ``subject``), oldest first."""
        assert self.system.nats is not None
        nc = await nats.connect(self.system.nats.url)
        events: list[AnyEvent] = []
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            if info.state.messages == 0:
                return events
            sub = await js.pull_subscribe(subject, stream=stream)
            while True:
                try:
                    batch = await sub.fetch(100, timeout=1)
                except TimeoutError:
                    break
                events.extend(decode_event(m.data) for m in batch)
                if len(events) >= info.state.messages:
                    break
            await sub.unsubscribe()
        finally:
            await nc.close()
        return events


@asynccontextmanager
async def fault_system(
    tmp_path: Path,
    *,
    logins: int,
    accounts_per_login: int,
    extra_env: dict[str, str] | None = None,
    executors: int = 1,
    spare_executors: int = 0,
    shards: int = 4,
) -> AsyncIterator[FaultRig]:
    """The whole system as processes, seeded; every process stopped on exit."""
    system = System(
        executors=executors,
        spare_executors=spare_executors,
        shards=shards,
        log_dir=tmp_path,
        extra_env={"PHALANX_LOG_LEVEL": "INFO", **(extra_env or {})},
    )
    try:
        await asyncio.to_thread(system.start)
        seeded = await seed(system.endpoints, logins=logins, accounts_per_login=accounts_per_login)
        async with httpx.AsyncClient(timeout=30) as http:
            rig = FaultRig(system, http, seeded)
            await rig.learn_users()
            yield rig
    finally:
        await asyncio.to_thread(system.stop)
