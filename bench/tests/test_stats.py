"""Nearest-rank quantiles and the latency summary."""

from __future__ import annotations

import pytest

from phalanx_bench.stats import quantile, summary


def test_nearest_rank_quantiles() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose

    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.9) == 90.0
    assert quantile(values, 0.99) == 99.0
    assert quantile(values, 1.0) == 100.0
    assert quantile([3.0], 0.99) == 3.0


def test_summary_of_few_values_and_of_none() -> None:
    assert summary([0.3, 0.1, 0.2]) == {"p50_s": 0.2, "p90_s": 0.3, "p99_s": 0.3, "max_s": 0.3}
    with pytest.raises(ValueError, match="no values"):
        summary([])
