"""Ingest's default maximum signal ages are bounded like a strategy's (ADR-0185): the intent
claims' time to live is chosen from the longest deadline a signal can get."""

from __future__ import annotations

import pytest

from phalanx_common.settings import SettingsError, load_settings
from phalanx_common.signal_ages import MAX_SIGNAL_AGE_S
from phalanx_ingest.settings import IngestSettings


@pytest.mark.parametrize("variable", ["PHALANX_MAX_ENTRY_AGE_S", "PHALANX_MAX_EXIT_AGE_S"])
def test_a_default_age_longer_than_a_day_is_refused(variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(IngestSettings, {variable: str(MAX_SIGNAL_AGE_S + 1)})
    with pytest.raises(SettingsError, match=variable):
        load_settings(IngestSettings, {variable: "-1"})
    settings = load_settings(IngestSettings, {variable: str(MAX_SIGNAL_AGE_S)})
    assert MAX_SIGNAL_AGE_S in (settings.max_entry_age_s, settings.max_exit_age_s)
