"""Preset names expand to their scenarios; the 10,000-account preset runs two replicas."""

from __future__ import annotations

import pytest

from phalanx_bench.presets import PRESETS, Fanout, expand


def test_main_is_everything_but_the_soak_and_the_ledger_rebuild() -> None:
    names = [p.name for p in expand(["main"])]

    assert "soak" not in names
    assert "ledger-rebuild" not in names
    assert {"ladder", "1000x50", "venue", "first-order", "webhook", "10000x2000"} <= set(names)
    assert [p.name for p in expand(["all", "soak"])].count("soak") == 1


def test_the_issue_layouts_are_there() -> None:
    layouts = {
        (s.accounts, s.logins, s.latency_ms, s.jitter_ms, p.executors)
        for p in PRESETS.values()
        for s in p.steps
        if isinstance(s, Fanout)
    }

    for n in (25, 100, 250, 500, 1000):
        assert (n, n, 0.0, 0.0, 1) in layouts
    assert (1000, 50, 0.0, 0.0, 1) in layouts
    assert (1000, 1000, 50.0, 20.0, 1) in layouts
    assert (10000, 2000, 0.0, 0.0, 2) in layouts


def test_an_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        expand(["nope"])
