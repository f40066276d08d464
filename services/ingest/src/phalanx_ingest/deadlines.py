"""A signal's deadline (``not_after_ns``): the last moment any order of it may be sent (ADR-0045).

Shared by the webhook and by deliberate re-runs (ADR-0090), so both apply one rule.
"""

from __future__ import annotations

from phalanx_common.events import Signal
from phalanx_common.records import StrategyRecord
from phalanx_ingest.payload import parse_time_ns
from phalanx_ingest.settings import IngestSettings

__all__ = ["not_after_ns"]


def not_after_ns(
    strategy: StrategyRecord, settings: IngestSettings, signal: Signal, received_ns: int
) -> int:
    """Receipt + ``delay`` + the strategy's maximum age for the signal's kind, or ``expiresAt``
    when that is sooner."""
    exit_like = signal.action in ("exit", "cancel") or signal.sentiment == "flat"
    if exit_like:
        max_age_s = strategy.max_exit_age_s or settings.max_exit_age_s
    else:
        max_age_s = strategy.max_entry_age_s or settings.max_entry_age_s
    delay_s = float(signal.delay_s or 0)
    not_after = received_ns + int((delay_s + max_age_s) * 1e9)
    if signal.expires_at is not None:
        expires_ns = parse_time_ns(signal.expires_at)
        if expires_ns is not None:
            not_after = min(not_after, expires_ns)
    return not_after
