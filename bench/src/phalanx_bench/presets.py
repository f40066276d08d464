"""Named benchmark presets: which scenarios run, with how many accounts, logins and replicas.

``phalanx-bench --preset NAME [NAME ...]``; ``main`` (the default, what ``make bench`` runs) is
every preset but the 10-minute ``soak`` and ``ledger-rebuild``; ``all`` is every one; ``quick``
is a smoke run under a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PRESETS",
    "Fanout",
    "FirstOrder",
    "LedgerRebuild",
    "Preset",
    "Soak",
    "Step",
    "WebhookRate",
    "expand",
]


@dataclass(frozen=True)
class Fanout:
    """One signal to every account, ``runs`` times; venue latency ``latency_ms ± jitter_ms``."""

    name: str
    accounts: int
    logins: int
    runs: int = 5
    latency_ms: float = 0.0
    jitter_ms: float = 0.0


@dataclass(frozen=True)
class FirstOrder:
    """Webhook → first order at the venue, on a small strategy."""

    accounts: int = 25
    logins: int = 25
    signals: int = 20


@dataclass(frozen=True)
class Soak:
    """``strategies`` strategies, ``signals_per_s`` in all, for ``duration_s``."""

    strategies: int = 20
    signals_per_s: float = 2.0
    duration_s: float = 600.0
    accounts_per_strategy: int = 5
    sample_s: float = 10.0


@dataclass(frozen=True)
class WebhookRate:
    """Webhook acceptance of a real ingest process at ``rate`` requests/s."""

    rate: float
    duration_s: float = 10.0


@dataclass(frozen=True)
class LedgerRebuild:
    """Ledger rebuild of ``fills`` fills (``phalanx_bench.ledger_rebuild``, when present)."""

    fills: int = 1_000_000


Step = Fanout | FirstOrder | Soak | WebhookRate | LedgerRebuild


@dataclass(frozen=True)
class Preset:
    """Steps that share one running system with ``executors`` replicas."""

    name: str
    steps: tuple[Step, ...]
    executors: int = 1


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "ladder",
            tuple(Fanout(f"{n}x{n}", n, n) for n in (25, 100, 250, 500, 1000)),
        ),
        Preset("1000x50", (Fanout("1000x50", 1000, 50, runs=3),)),
        Preset("1000x1000", (Fanout("1000x1000", 1000, 1000),)),
        Preset(
            "venue",
            (
                Fanout("1000x1000 venue 0ms", 1000, 1000),
                Fanout("1000x1000 venue 50±20ms", 1000, 1000, latency_ms=50, jitter_ms=20),
            ),
        ),
        Preset("first-order", (FirstOrder(),)),
        Preset("webhook", (WebhookRate(100), WebhookRate(500))),
        Preset("10000x2000", (Fanout("10000x2000", 10000, 2000, runs=3),), executors=2),
        Preset("soak", (Soak(),)),
        Preset("ledger-rebuild", (LedgerRebuild(),)),
        Preset(
            "quick",
            (
                Fanout("25x25", 25, 25, runs=3),
                Fanout("25x25 venue 50±20ms", 25, 25, runs=2, latency_ms=50, jitter_ms=20),
                FirstOrder(accounts=5, logins=5, signals=3),
                WebhookRate(100, duration_s=1.0),
                Soak(
                    strategies=2,
                    signals_per_s=2.0,
                    duration_s=6.0,
                    accounts_per_strategy=2,
                    sample_s=2.0,
                ),
            ),
        ),
    )
}

_GROUPS = {
    "main": ("ladder", "1000x50", "venue", "first-order", "webhook", "10000x2000"),
    "all": (
        "ladder",
        "1000x50",
        "venue",
        "first-order",
        "webhook",
        "10000x2000",
        "soak",
        "ledger-rebuild",
    ),
}


def expand(names: list[str]) -> list[Preset]:
    """Presets by name (``main`` and ``all`` expand to theirs), in order, without repeats."""
    wanted: list[str] = []
    for name in names:
        for one in _GROUPS.get(name, (name,)):
            if one not in PRESETS:
                raise ValueError(
                    f"unknown preset {one!r}; known: {', '.join([*PRESETS, *_GROUPS])}"
                )
            if one not in wanted:
                wanted.append(one)
    return [PRESETS[n] for n in wanted]
