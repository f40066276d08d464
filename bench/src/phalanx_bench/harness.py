"""One running system under benchmark, and what the scenarios share on it: seeded strategies
(by layout, reused), the floors measured on it, the outcome watch, the process meter."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from phalanx_bench.floor import FloorPool, measure_floor
from phalanx_bench.outcomes import OutcomeWatch
from phalanx_bench.proc_meter import ProcMeter
from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_bench.system import System
from phalanx_bench.venue_stats import venue_stats

__all__ = ["Harness", "signal_body"]

PRICE = 21000


def signal_body(entry: bool, tag: str) -> dict[str, Any]:
    """An entry with an absolute bracket (one ``placeOSO`` per account) or an exit (one
    ``liquidateposition`` per account). Entries alternate with exits: a buy after a buy would
    add, a buy after a sell reverse (two calls)."""
    body: dict[str, Any] = {"ticker": "MNQ1!", "action": "buy" if entry else "exit", "time": tag}
    if entry:
        body |= {
            "quantity": 1,
            "price": PRICE,
            "takeProfit": {"limitPrice": PRICE + 100},
            "stopLoss": {"type": "stop", "stopPrice": PRICE - 100},
        }
    return body


@dataclass
class Harness:
    """Start with :meth:`open`, end with :meth:`close`."""

    system: System
    # idle connections dropped before the services' 5 s keep-alive closes them (see seed.py)
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(keepalive_expiry=1.0)
        )
    )
    watch: OutcomeWatch | None = None
    pool: FloorPool | None = None
    meter: ProcMeter = field(default_factory=lambda: ProcMeter({}))
    seeded: dict[tuple[int, int, str], SeededStrategy] = field(default_factory=dict)
    floors: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    next_entry: dict[str, bool] = field(default_factory=dict)
    connected: dict[tuple[int, int, str], str] = field(default_factory=dict)
    # seconds spent seeding each layout, and then waiting for the executors' sockets
    seeding: dict[tuple[int, int, str], dict[str, float]] = field(default_factory=dict)
    floor_runs: int = 3

    async def open(self) -> None:
        """Connect to the started system; set the venue's price."""
        endpoints = self.system.endpoints
        self.watch = OutcomeWatch(self.system.nats_url)
        await self.watch.start()
        resp = await self.http.post(
            endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": PRICE}
        )
        resp.raise_for_status()
        sim_ws = endpoints.sim.replace("http://", "ws://") + "/v1/websocket"
        self.pool = FloorPool(endpoints.sim, sim_ws, front_month())
        self.meter = ProcMeter(self.system.pids())

    async def close(self) -> None:
        """Close the floor's sockets, the watch and the HTTP client."""
        if self.pool is not None:
            await self.pool.close()
        if self.watch is not None:
            await self.watch.stop()
        await self.http.aclose()

    async def floor(self, intents: int, logins: int, attempts: int = 2) -> dict[str, Any]:
        """The floor for this layout (measured once per system, on first use).

        A failed measurement is tried again on fresh sockets (at 10,000 intents in one process
        on a loaded machine, the venue may close sockets whose heartbeats came late, ADR-0172);
        after ``attempts`` it is reported (``error``, ``p50_s`` NaN) and the scenario still runs.
        """
        key = (intents, logins)
        if key in self.floors:
            return self.floors[key]
        assert self.pool is not None
        assert self.system.redis is not None
        errors: list[str] = []
        for _ in range(attempts):
            try:
                floor = await measure_floor(
                    self.pool,
                    self.system.nats_url,
                    self.system.redis.url + "/1",
                    intents,
                    logins,
                    self.floor_runs,
                )
            except Exception as exc:  # reported in the JSON; the run goes on
                errors.append(repr(exc))
                await self.pool.close()  # the next attempt opens new sockets
                continue
            self.floors[key] = {**floor, "failed_attempts": errors} if errors else floor
            return self.floors[key]
        self.floors[key] = {
            "intents": intents,
            "logins": logins,
            "p50_s": math.nan,
            "error": errors[-1],
            "failed_attempts": errors,
        }
        return self.floors[key]

    async def strategy(self, accounts: int, logins: int, label: str = "") -> SeededStrategy:
        """A strategy over ``accounts`` accounts under ``logins`` logins of its own (seeded once
        per layout and ``label``)."""
        key = (accounts, logins, label)
        if key not in self.seeded:
            endpoints = self.system.endpoints
            before = int((await venue_stats(self.http, endpoints.sim))["connections"])
            t0 = time.perf_counter()
            self.seeded[key] = await seed(
                endpoints,
                logins,
                math.ceil(accounts / logins),
                strategy_name=f"bench-{accounts}x{logins}{label}",
                prefix=f"b{accounts}x{logins}{label}u",
            )
            t1 = time.perf_counter()
            # Up to 0.15 s a login (at least 2 minutes) for the executor's sockets to open.
            self.connected[key] = await self._wait_connections(
                before, logins, max(120.0, 0.15 * logins)
            )
            self.seeding[key] = {
                "seed_s": round(t1 - t0, 1),
                "sockets_wait_s": round(time.perf_counter() - t1, 1),
            }
        return self.seeded[key]

    async def _wait_connections(self, before: int, logins: int, timeout_s: float) -> str:
        # The executor opens one socket per new login; signals before that measure connecting.
        deadline = time.monotonic() + timeout_s
        opened = 0
        while time.monotonic() < deadline:
            stats = await venue_stats(self.http, self.system.endpoints.sim)
            opened = int(stats["connections"]) - before
            if opened >= logins:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # authorize and sync after the socket opened
        return f"{min(opened, logins)}/{logins} sockets open before the first signal"

    async def post(self, strategy: SeededStrategy, tag: str) -> tuple[str, float, float]:
        """Post the strategy's next signal; returns ``(signal_id, perf t0, epoch t0)``."""
        entry = self.next_entry.get(strategy.strategy_id, True)
        self.next_entry[strategy.strategy_id] = not entry
        body = signal_body(entry, f"{tag}-{time.time_ns()}")
        epoch0 = time.time()
        t0 = time.perf_counter()
        resp = await self.http.post(strategy.webhook_url, json=body)
        resp.raise_for_status()
        return str(resp.json()["id"]), t0, epoch0
