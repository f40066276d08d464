"""``make bench``: webhook → last order acknowledged, through the real system.

Starts NATS, Redis, the simulator and every service as separate processes (see
:mod:`phalanx_bench.system`), seeds each scenario's logins and accounts through the public
admin APIs, then posts webhooks to the public endpoint and times each until the last
``OrderAccepted``/``OrderRejected`` for that signal is on the bus. Prints JSON (and writes
``bench/results/latest.json``): p50/p99 per scenario, broker calls per account (from the
simulator's request log) and rate-limit violations seen by the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
from nats.aio.msg import Msg

from phalanx_bench.seed import Endpoints, front_month, seed
from phalanx_bench.system import System
from phalanx_common.bus import server_urls

__all__ = ["main"]

SCENARIOS: list[tuple[int, int]] = [
    (25, 25),
    (100, 100),
    (250, 250),
    (500, 500),
    (1000, 1000),
    (1000, 50),
    # the 10,000-account target (docs/architecture.md); run with --max-accounts 10000 --executors 2
    (10000, 500),
]


class _Outcome(msgspec.Struct):
    type: str
    signal_id: str = ""
    reason: str = ""


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _stats(http: httpx.AsyncClient, endpoints: Endpoints) -> dict[str, Any]:
    resp = await http.get(endpoints.sim + "/admin/stats")
    resp.raise_for_status()
    stats: dict[str, Any] = resp.json()
    return stats


def _count(stats: dict[str, Any], endpoint: str) -> int:
    by_endpoint: dict[str, int] = stats.get("byEndpoint") or {}
    return int(sum(v for k, v in by_endpoint.items() if k.lower() == endpoint.lower()))


async def _scenario(
    endpoints: Endpoints, nats_url: str, accounts: int, logins: int, runs: int
) -> dict[str, Any]:
    seeded = await seed(
        endpoints,
        logins,
        accounts // logins,
        strategy_name=f"bench-{accounts}x{logins}",
        prefix=f"b{accounts}x{logins}u",
    )
    outcomes: dict[str, int] = {}
    kinds: dict[str, int] = {}
    last_seen: dict[str, float] = {}
    decoder = msgspec.json.Decoder(_Outcome)
    changed = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        event = decoder.decode(msg.data)
        if event.type == "OrderOutcomeUnknown":  # not an outcome yet: reconciliation follows
            kinds[event.type] = kinds.get(event.type, 0) + 1
        if event.type in ("OrderAccepted", "OrderRejected"):
            outcomes[event.signal_id] = outcomes.get(event.signal_id, 0) + 1
            kind = event.type + (f":{event.reason}" if event.reason else "")
            kinds[kind] = kinds.get(kind, 0) + 1
            last_seen[event.signal_id] = time.perf_counter()
            changed.set()

    nc = await nats.connect(server_urls(nats_url))
    sub = await nc.subscribe("orders.>", cb=on_msg)
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": 21000}
        )
        resp.raise_for_status()
        await asyncio.sleep(2.0)  # let the executor connect the new logins' sockets
        before = await _stats(http, endpoints)
        for run in range(runs):
            # Entries (with an absolute bracket) alternate with exits, so each signal costs one
            # venue call per account; a buy after a sell would be a reversal (two calls), and
            # 20-account logins would then wait for their 70/min budget, as they must.
            entry = run % 2 == 0
            body: dict[str, Any] = {
                "ticker": "MNQ1!",
                "action": "buy" if entry else "exit",
                "time": f"bench-{accounts}x{logins}-{run}-{time.time_ns()}",
            }
            if entry:
                body |= {
                    "quantity": 1,
                    "price": 21000,
                    "takeProfit": {"limitPrice": 21100},
                    "stopLoss": {"type": "stop", "stopPrice": 20900},
                }
            t0 = time.perf_counter()
            resp = await http.post(seeded.webhook_url, json=body)
            resp.raise_for_status()
            signal_id = resp.json()["id"]
            deadline = t0 + 120
            while outcomes.get(signal_id, 0) < accounts and time.perf_counter() < deadline:
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), deadline - time.perf_counter())
            done = outcomes.get(signal_id, 0)
            if done < accounts:
                raise RuntimeError(f"{accounts}x{logins}: only {done}/{accounts} outcomes in 120s")
            latencies.append(last_seen[signal_id] - t0)
        after = await _stats(http, endpoints)
    await sub.unsubscribe()
    await nc.close()
    calls = sum(
        _count(after, endpoint) - _count(before, endpoint)
        for endpoint in ("order/placeoso", "order/placeorder", "order/liquidateposition")
    )
    return {
        "accounts": accounts,
        "logins": logins,
        "runs": runs,
        "p50_s": round(statistics.median(latencies), 4),
        "p99_s": round(_quantile(latencies, 0.99), 4),
        "max_s": round(max(latencies), 4),
        "broker_calls_per_account": round(calls / (accounts * runs), 3),
        "violations": int(after.get("violationCount", 0)) - int(before.get("violationCount", 0)),
        "outcomes": kinds,
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    system = System(executors=args.executors, nats_url=args.nats_url)
    endpoints = system.start()
    try:
        results = []
        for accounts, logins in SCENARIOS:
            if accounts > args.max_accounts:
                continue
            if args.only and f"{accounts}x{logins}" not in args.only:
                continue
            runs = 3 if accounts // logins > 1 else args.runs
            results.append(await _scenario(endpoints, system.nats_url, accounts, logins, runs))
            print(json.dumps(results[-1]), flush=True)
        return {"executors": args.executors, "scenarios": results}
    finally:
        system.stop()


def main() -> None:
    """Run the benchmark and print its JSON report."""
    parser = argparse.ArgumentParser(prog="phalanx-bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="signals per scenario")
    parser.add_argument("--executors", type=int, default=1)
    parser.add_argument("--max-accounts", type=int, default=1000)
    parser.add_argument("--out", default="bench/results/latest.json")
    parser.add_argument(
        "--nats-url",
        default="",
        help="run against this NATS (URLs comma-separated, e.g. a cluster's); default: start one",
    )
    parser.add_argument(
        "--only", nargs="*", default=[], help="scenarios to run, e.g. 1000x1000 1000x50"
    )
    args = parser.parse_args()
    report = asyncio.run(_main(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
