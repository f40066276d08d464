"""The scenarios that drive the whole system: a fan-out (one signal to every account), webhook →
first order at the venue, and the soak. Each returns a JSON-ready dict."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from phalanx_bench.cpu_profile import Profiler
from phalanx_bench.harness import Harness
from phalanx_bench.proc_meter import cpu_delta
from phalanx_bench.stats import summary
from phalanx_bench.venue_stats import first_order_after, order_calls, set_latency, venue_stats

__all__ = ["fanout", "first_order", "soak"]

#: the project's original estimates, where it gave one: (accounts, logins) -> what it said
SEED_ESTIMATES: dict[tuple[int, int], dict[str, Any]] = {
    (1000, 1000): {"p50_s": 80.0, "broker_calls_per_account": 2.0, "text": "~80 s, ~2 calls"},
    (10000, 2000): {"p50_s": 8.0, "text": "target p50 < 8 s"},
}


def _cpu(harness: Harness, before: dict[str, float], cpu0: float) -> dict[str, float]:
    used = cpu_delta(before, harness.meter.cpu())
    used["bench"] = round(time.process_time() - cpu0, 2)
    return used


async def fanout(
    harness: Harness,
    name: str,
    accounts: int,
    logins: int,
    runs: int,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    profiles: Path | None = None,
) -> dict[str, Any]:
    """``runs`` signals, one after another, each to every account; seconds from the webhook
    until the last account's outcome is on the bus. With ``profiles``, every executor replica is
    sampled while the signals run (not while seeding): ``executor_profile`` (ADR-0183)."""
    floor = await harness.floor(accounts, logins)
    strategy = await harness.strategy(accounts, logins)
    assert harness.watch is not None
    sim = harness.system.endpoints.sim
    await set_latency(harness.http, sim, latency_ms, jitter_ms)
    before = await venue_stats(harness.http, sim)
    cpu_before, cpu0 = harness.meter.cpu(), time.process_time()
    latencies: list[float] = []
    to_first_order: list[float] = []
    incomplete: str | None = None
    profiler = _profiler(harness, name, profiles)
    try:
        for run in range(runs):
            signal_id, t0, epoch0 = await harness.post(strategy, f"{name}-{run}")
            try:
                last = await harness.watch.wait(signal_id, accounts)
            except RuntimeError as exc:  # reported, and this scenario ends here
                incomplete = f"signal {run + 1} of {runs}: {exc}"
                break
            latencies.append(last - t0)
            first = await first_order_after(harness.http, sim, epoch0, look_back=accounts * 4)
            if first is not None:
                to_first_order.append(first - epoch0)
            await asyncio.sleep(0.5)
    finally:
        profile = profiler.stop() if profiler is not None else None
        await set_latency(harness.http, sim, 0.0, 0.0)
    after = await venue_stats(harness.http, sim)
    stats = summary(latencies) if latencies else {"p50_s": float("nan")}
    floor_s = float(floor["p50_s"])
    offset = latency_ms / 1000.0
    result: dict[str, Any] = {
        "name": name,
        "accounts": accounts,
        "logins": logins,
        "executors": harness.system.executors,
        "venue_latency_ms": f"{latency_ms:g}±{jitter_ms:g}" if latency_ms else "0",
        "runs": runs,
        "incomplete": incomplete,
        "sockets": harness.connected.get((accounts, logins, "")),
        "seeding": harness.seeding.get((accounts, logins, "")),
        **stats,
        "latencies_s": [round(x, 4) for x in latencies],
        "floor_p50_s": floor_s,
        "ratio_p50": round(stats["p50_s"] / floor_s, 2),
        "ratio_p50_minus_latency": round((stats["p50_s"] - offset) / floor_s, 2)
        if latency_ms
        else None,
        "webhook_to_first_order_p50_s": summary(to_first_order)["p50_s"]
        if to_first_order
        else None,
        "broker_calls_per_account": round(
            (order_calls(after) - order_calls(before)) / (accounts * runs), 3
        ),
        "violations": int(after.get("violationCount", 0)) - int(before.get("violationCount", 0)),
        "cpu_s": _cpu(harness, cpu_before, cpu0),
        "outcomes": dict(harness.watch.kinds),
        "seed_estimate": SEED_ESTIMATES.get((accounts, logins), {}).get("text"),
        "seed_estimate_s": SEED_ESTIMATES.get((accounts, logins), {}).get("p50_s"),
    }
    if profile is not None:
        result["executor_profile"] = profile
    harness.watch.kinds.clear()
    return result


def _profiler(harness: Harness, name: str, profiles: Path | None) -> Profiler | None:
    if profiles is None:
        return None
    pids = harness.system.pids()
    executors = {n: pid for n, pid in pids.items() if n.startswith("executor-")}
    profiler = Profiler(executors, profiles, name.replace(" ", "_"))
    profiler.start()
    return profiler


async def first_order(
    harness: Harness,
    accounts: int,
    logins: int,
    signals: int,
    gap_s: float = 0.3,
    profiles: Path | None = None,
) -> dict[str, Any]:
    """Webhook → first order call handled by the venue (its request log, millisecond
    resolution) and → first outcome on the bus, for ``signals`` signals on a small strategy.
    With ``profiles``, the executor is sampled while the signals run (ADR-0183)."""
    strategy = await harness.strategy(accounts, logins)
    assert harness.watch is not None
    sim = harness.system.endpoints.sim
    before = await venue_stats(harness.http, sim)
    cpu_before, cpu0 = harness.meter.cpu(), time.process_time()
    to_wire: list[float] = []
    to_outcome: list[float] = []
    profiler = _profiler(harness, "first-order", profiles)
    try:
        for run in range(signals):
            signal_id, t0, epoch0 = await harness.post(strategy, f"first-{run}")
            await harness.watch.wait(signal_id, accounts)
            to_outcome.append(harness.watch.first_seen[signal_id] - t0)
            first = await first_order_after(harness.http, sim, epoch0, look_back=accounts * 4)
            if first is not None:
                to_wire.append(first - epoch0)
            await asyncio.sleep(gap_s)
    finally:
        profile = profiler.stop() if profiler is not None else None
    after = await venue_stats(harness.http, sim)
    return {
        **({"executor_profile": profile} if profile is not None else {}),
        "name": "first-order",
        "accounts": accounts,
        "logins": logins,
        "signals": signals,
        "to_first_order_at_venue": summary(to_wire) if to_wire else None,
        "to_first_outcome_on_bus": summary(to_outcome),
        "target": "webhook → first order on the wire p50 < 10 ms",
        "violations": int(after.get("violationCount", 0)) - int(before.get("violationCount", 0)),
        "cpu_s": _cpu(harness, cpu_before, cpu0),
    }


async def soak(
    harness: Harness,
    strategies: int,
    signals_per_s: float,
    duration_s: float,
    accounts_per_strategy: int = 5,
    sample_s: float = 10.0,
) -> dict[str, Any]:
    """``strategies`` strategies (each over its own logins, one account per login), signals at
    ``signals_per_s`` in all (round robin), for ``duration_s``. Every ``sample_s``: each
    process's resident memory and the latencies of the signals completed in that interval.
    The first quarter (at least one sample) is warm-up; growth is measured after it."""
    assert harness.watch is not None
    watch = harness.watch
    seeded = [
        await harness.strategy(accounts_per_strategy, accounts_per_strategy, f"s{n}")
        for n in range(strategies)
    ]
    sim = harness.system.endpoints.sim
    before = await venue_stats(harness.http, sim)
    cpu_before, cpu0 = harness.meter.cpu(), time.process_time()
    done: list[tuple[float, float]] = []  # (finished, latency), perf_counter seconds
    failures: list[str] = []
    start = time.perf_counter()
    total = int(duration_s * signals_per_s)

    async def one(n: int) -> None:
        delay = start + n / signals_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            signal_id, t0, _ = await harness.post(seeded[n % strategies], f"soak-{n}")
            last = await watch.wait(signal_id, accounts_per_strategy, timeout_s=60)
        except (RuntimeError, OSError, ValueError) as exc:  # counted, the soak goes on
            failures.append(f"{type(exc).__name__}: {exc}")
            return
        done.append((last, last - t0))

    samples: list[dict[str, Any]] = []

    async def sampler() -> None:
        since = start
        while True:
            await asyncio.sleep(sample_s)
            now = time.perf_counter()
            window = [lat for fin, lat in done if since <= fin < now]
            samples.append(
                {
                    "t_s": round(now - start, 1),
                    "signals": len(window),
                    **(summary(window) if window else {}),
                    "rss_mib": harness.meter.rss_mib(),
                }
            )
            since = now

    sampling = asyncio.create_task(sampler())
    try:
        await asyncio.gather(*(one(n) for n in range(total)))
    finally:
        sampling.cancel()
    after = await venue_stats(harness.http, sim)
    warm = max(1, len(samples) // 4)
    return {
        "name": "soak",
        "strategies": strategies,
        "accounts_per_strategy": accounts_per_strategy,
        "signals_per_s": signals_per_s,
        "duration_s": duration_s,
        "signals": total,
        "completed": len(done),
        "failures": failures[:10],
        **summary([lat for _, lat in done] or [float("nan")]),
        "violations": int(after.get("violationCount", 0)) - int(before.get("violationCount", 0)),
        "cpu_s": _cpu(harness, cpu_before, cpu0),
        "after_warm_up": _growth(samples[warm - 1 :]) if len(samples) > warm else None,
        "samples": samples,
    }


def _growth(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Memory (MiB) and p50 latency at the end of warm-up against the last sample."""
    first, last = samples[0], samples[-1]
    rss = {
        name: round(last["rss_mib"][name] - mib, 1)
        for name, mib in first["rss_mib"].items()
        if name in last["rss_mib"]
    }
    return {
        "from_t_s": first["t_s"],
        "to_t_s": last["t_s"],
        "rss_growth_mib": rss,
        "p50_s": [first.get("p50_s"), last.get("p50_s")],
    }
