"""Identifiers: event ids, deterministic signal/intent/batch ids."""

from __future__ import annotations

import hashlib
import os
import time

__all__ = ["batch_id", "intent_id", "new_event_id", "signal_id_from"]


def new_event_id() -> str:
    """Return a fresh, time-ordered, 32-hex-character event id."""
    return f"{time.time_ns():016x}{os.urandom(8).hex()}"


def signal_id_from(strategy_id: str, body: bytes) -> str:
    """Derive a deterministic signal id from the strategy and the exact body received.

    The same alert resent (TradingView retry, duplicated delivery) yields the same id, so
    JetStream's duplicate window and the intent claims trade it once.
    """
    digest = hashlib.sha256(strategy_id.encode() + b"\x00" + body).hexdigest()
    return f"s{digest[:31]}"


def intent_id(signal_id: str, account_id: int) -> str:
    """The id of one account's intent for one signal; also the broker clOrdId (<= 64 chars)."""
    return f"{signal_id}-{int(account_id)}"


def batch_id(signal_id: str, shard: int, index: int) -> str:
    """The deterministic id of a planned batch."""
    return f"{signal_id}-b{int(shard)}-{int(index)}"
