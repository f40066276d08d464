"""``make bench``: the whole system against a floor measured on the same machine in the same run.

Starts NATS, Redis, the simulator and every service as separate processes (see
:mod:`phalanx_bench.system`), one system per executor-replica count the chosen presets need.
Each system calibrates first: the per-intent floor (:mod:`phalanx_bench.floor`) for every
layout its fan-outs use. Then the presets (:mod:`phalanx_bench.presets`) seed their logins and
accounts through the public admin APIs and post webhooks to the public endpoint, timing each
until the last order outcome is on the bus. Every fan-out reports p50/p90/p99/max in seconds and
as a ratio to its floor, broker calls per account, violations at the venue and CPU seconds per
process. Writes ``bench/results/latest.json`` and ``bench/results/latest.png`` (latency against
accounts, with the floor and the project's original estimates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from phalanx_bench.chart import write_chart
from phalanx_bench.harness import Harness
from phalanx_bench.ledger_rebuild import run_ledger_rebuild
from phalanx_bench.presets import (
    PRESETS,
    Fanout,
    FirstOrder,
    LedgerRebuild,
    Preset,
    Soak,
    WebhookRate,
    expand,
)
from phalanx_bench.scenarios import fanout, first_order, soak
from phalanx_bench.system import System
from phalanx_bench.webhook_bench import run_webhook_bench

__all__ = ["machine", "main", "run_presets"]


def machine() -> dict[str, Any]:
    """What this machine is, and how busy it was when the run started (it may be shared)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": model,
        "cores": usable,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def _ledger_rebuild(step: LedgerRebuild) -> dict[str, Any]:
    """The ledger's rebuild of ``step.fills`` fills, full and from a snapshot (ADR-0122)."""
    result = await asyncio.to_thread(run_ledger_rebuild, step.fills)
    return {"name": "ledger-rebuild", **result}


async def _on_system(
    presets: list[Preset], executors: int, out: list[dict[str, Any]], profiles: Path | None
) -> None:
    steps = [s for p in presets for s in p.steps]
    fanouts = [s for s in steps if isinstance(s, Fanout)]
    if not any(isinstance(s, Fanout | FirstOrder | Soak) for s in steps):
        return
    system = System(executors=executors)
    system.start()
    harness = Harness(system)
    try:
        await harness.open()
        # Calibration first: every floor this system's fan-outs will be compared with.
        for calibrate in fanouts:
            if (calibrate.accounts, calibrate.logins) not in harness.floors:
                floor = await harness.floor(calibrate.accounts, calibrate.logins)
                print(json.dumps({"floor": floor}), flush=True)
        if harness.pool is not None:  # their heartbeats would load the venue during scenarios
            await harness.pool.close()
        for step in steps:
            try:
                result = await _step(harness, step, profiles)
            except Exception as exc:  # reported in the JSON; the run goes on
                result = {"name": type(step).__name__, "step": repr(step), "error": repr(exc)}
            if result is not None:
                out.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "samples"}), flush=True)
    finally:
        await harness.close()
        system.stop()
    out_floors = [{"executors": executors, **f} for f in harness.floors.values()]
    out.append({"name": "floors", "executors": executors, "floors": out_floors})


async def _step(harness: Harness, step: object, profiles: Path | None) -> dict[str, Any] | None:
    if isinstance(step, Fanout):
        return await fanout(
            harness,
            step.name,
            step.accounts,
            step.logins,
            step.runs,
            step.latency_ms,
            step.jitter_ms,
            profiles=profiles,
        )
    if isinstance(step, FirstOrder):
        return await first_order(
            harness, step.accounts, step.logins, step.signals, profiles=profiles
        )
    if isinstance(step, Soak):
        return await soak(
            harness,
            step.strategies,
            step.signals_per_s,
            step.duration_s,
            step.accounts_per_strategy,
            step.sample_s,
        )
    return None  # run without a system (webhook, ledger rebuild)


async def run_presets(presets: list[Preset], profiles: Path | None = None) -> dict[str, Any]:
    """Run ``presets`` (grouped by replica count, one system each) and return the report; with
    ``profiles``, each fan-out's executor profile too (raw files written there)."""
    started = time.time()
    host = machine()  # the load average before this run added its own
    results: list[dict[str, Any]] = []
    for executors in sorted({p.executors for p in presets}):
        chosen = [p for p in presets if p.executors == executors]
        await _on_system(chosen, executors, results, profiles)
    for step in (s for p in presets for s in p.steps):
        if isinstance(step, WebhookRate):
            report = await asyncio.to_thread(run_webhook_bench, step.rate, step.duration_s)
            results.append({"name": f"webhook {step.rate:g}/s", **report})
            print(json.dumps(results[-1]), flush=True)
        elif isinstance(step, LedgerRebuild):
            results.append(await _ledger_rebuild(step))
            print(json.dumps(results[-1]), flush=True)
    floors = [f for r in results if r.get("name") == "floors" for f in r["floors"]]
    return {
        "machine": host,
        "presets": [p.name for p in presets],
        "started_epoch_s": round(started, 1),
        "duration_s": round(time.time() - started, 1),
        "floors": floors,
        "scenarios": [r for r in results if r.get("name") != "floors"],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print its JSON report and write it (and the chart)."""
    parser = argparse.ArgumentParser(prog="phalanx-bench", description=__doc__)
    parser.add_argument(
        "--preset",
        nargs="+",
        default=["main"],
        help=f"presets: {' '.join(PRESETS)}; groups: main (default: all but soak, "
        "ledger-rebuild, quick and 1000x1000, the ladder's last step), all (all but quick and "
        "1000x1000)",
    )
    parser.add_argument("--quick", action="store_true", help="the quick preset (under a minute)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--chart", type=Path, default=None, help="default: --out with .png")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each executor replica with py-spy during every fan-out: the JSON gets "
        "each fan-out's CPU by step of an intent (executor_profile); raw stacks go to "
        "profiles/ beside --out (needs ptrace permission)",
    )
    args = parser.parse_args(argv)
    presets = expand(["quick"] if args.quick else args.preset)
    profiles = args.out.parent / "profiles" if args.profile else None
    report = asyncio.run(run_presets(presets, profiles))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_chart:
        chart = args.chart or args.out.with_suffix(".png")
        if write_chart(report, chart):
            print(f"chart: {chart}", flush=True)
    print(json.dumps({k: v for k, v in report.items() if k != "scenarios"}, indent=2))


if __name__ == "__main__":
    main()
