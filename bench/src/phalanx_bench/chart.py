"""The benchmark's chart: fan-out latency against accounts, with the floor measured in the same
run, 1.5 x the floor (the target) and the project's original estimates drawn beside it (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_chart"]


def _points(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = sorted(rows, key=lambda r: int(r["accounts"]))
    return [int(r["accounts"]) for r in rows], [float(r[key]) for r in rows]


def write_chart(report: dict[str, Any], path: Path) -> bool:
    """Draw ``report``'s fan-out scenarios into ``path``; False when there is nothing to draw."""
    fanouts = [s for s in report.get("scenarios", []) if "floor_p50_s" in s]
    if not fanouts:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    ladder = _draw_ladder(ax, fanouts)
    _draw_others(ax, [s for s in fanouts if s not in ladder])
    _draw_estimates(ax, fanouts)
    _finish(ax, report, ticker)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def _finish(ax: Any, report: dict[str, Any], ticker: Any) -> None:
    """Log axes, labels, the machine in the title, grid and legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("accounts (one signal to every account)")
    ax.set_ylabel("webhook → last order outcome, seconds")
    machine = report.get("machine", {})
    cpu, cores = machine.get("cpu_model", "?"), machine.get("cores", "?")
    ax.set_title(f"Phalanx fan-out latency: {cpu}, {cores} cores", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def _draw_ladder(ax: Any, fanouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ladder (one account per login, no venue latency, one executor): p50, p99, the floor
    and 1.5 x the floor; returns its scenarios."""
    ladder = [
        s
        for s in fanouts
        if s["accounts"] == s["logins"] and s["venue_latency_ms"] == "0" and s["executors"] == 1
    ]
    # One point per account count: the first measured (the ladder's; a repeat is the venue's).
    by_accounts: dict[int, dict[str, Any]] = {}
    for s in ladder:
        by_accounts.setdefault(int(s["accounts"]), s)
    ladder = list(by_accounts.values())
    if not ladder:
        return ladder
    xs, p50 = _points(ladder, "p50_s")
    _, p99 = _points(ladder, "p99_s")
    _, floor = _points(ladder, "floor_p50_s")
    ax.plot(xs, p50, "o-", color="tab:blue", label="Phalanx p50 (one account per login)")
    ax.plot(xs, p99, "^:", color="tab:blue", alpha=0.6, label="Phalanx p99")
    ax.plot(xs, floor, "s-", color="tab:green", label="floor (same run, same machine)")
    ax.plot(xs, [1.5 * f for f in floor], "--", color="tab:green", alpha=0.6, label="1.5 x floor")
    return ladder


def _draw_others(ax: Any, others: list[dict[str, Any]]) -> None:
    """Every other layout as a point, labelled in one box."""
    lines = []
    for s in others:
        ax.plot(s["accounts"], s["p50_s"], "D", color="tab:purple")
        ax.plot(s["accounts"], s["floor_p50_s"], "s", color="tab:green", alpha=0.5)
        if s.get("incomplete"):
            lines.append(f"{s['name']}: incomplete (floor {s['floor_p50_s']:.3g} s)")
        else:
            lines.append(f"{s['name']}: p50 {s['p50_s']:.3g} s = {s['ratio_p50']}x its floor")
    if lines:  # one box, not labels at the points: layouts share account counts
        ax.text(
            0.99,
            0.02,
            "\n".join(lines),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="tab:purple",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "tab:purple"},
        )


def _draw_estimates(ax: Any, fanouts: list[dict[str, Any]]) -> None:
    """The project's original estimates, once per account count."""
    estimates = [
        (int(s["accounts"]), float(s["seed_estimate_s"]), str(s["seed_estimate"]))
        for s in fanouts
        if s.get("seed_estimate_s")
    ]
    seen: set[int] = set()
    for accounts, seconds, text in estimates:
        if accounts in seen:
            continue
        seen.add(accounts)
        ax.plot(accounts, seconds, "x", color="tab:red", markersize=10)
        ax.annotate(f" original estimate: {text}", (accounts, seconds), fontsize=7, color="tab:red")
    ax.plot([], [], "D", color="tab:purple", label="other layouts (labelled)")
    if estimates:
        ax.plot([], [], "x", color="tab:red", label="original estimate")
