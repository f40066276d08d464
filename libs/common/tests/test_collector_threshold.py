"""Services run the cyclic collector's young generation less often (ADR-0186)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from phalanx_common.lifecycle import collect_less_often
from phalanx_common.settings import CommonSettings, load_settings


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_threshold_is_set_and_the_older_ratios_kept() -> None:
    gc.set_threshold(700, 10, 10)

    collect_less_often(50_000)

    assert gc.get_threshold() == (50_000, 10, 10)


def test_zero_leaves_python_s_thresholds() -> None:
    gc.set_threshold(700, 12, 15)

    collect_less_often(0)

    assert gc.get_threshold() == (700, 12, 15)


def test_the_threshold_is_a_setting_of_every_service() -> None:
    assert load_settings(CommonSettings, {}).gc_threshold > 700
    assert load_settings(CommonSettings, {"PHALANX_GC_THRESHOLD": "0"}).gc_threshold == 0
