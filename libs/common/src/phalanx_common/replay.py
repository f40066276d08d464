"""A deliberate re-run of a stored signal: the request's headers and the re-run's id (ADR-0090).

An operator asks for a re-run by publishing a message with an empty body to
``signals-replay.<strategy>`` (the REPLAYS stream) with these headers:

- ``Phalanx-Replay-Of``: the id of the stored signal to run again (required);
- ``Nats-Msg-Id``: the request's own id (required): a retried request with the same id is one
  request, and the re-run's signal id is derived from it;
- ``Phalanx-Replay-By`` / ``Phalanx-Replay-Reason``: who asked and why (optional, recorded).
"""

from __future__ import annotations

import hashlib

__all__ = ["REPLAY_BY", "REPLAY_OF", "REPLAY_REASON", "header", "rerun_signal_id"]

REPLAY_OF = "Phalanx-Replay-Of"
REPLAY_BY = "Phalanx-Replay-By"
REPLAY_REASON = "Phalanx-Replay-Reason"


def header(headers: dict[str, str] | None, name: str) -> str:
    """A header's value, its name matched without regard to case (``""`` when absent)."""
    if not headers:
        return ""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return ""


def rerun_signal_id(strategy_id: str, original_id: str, request_id: str) -> str:
    """The id of the re-run that request ``request_id`` makes of ``original_id``.

    Deterministic: a request delivered twice makes the same re-run, which the SIGNALS stream's
    duplicate window and the intent claims then trade once. Same shape as every signal id
    (ADR-0011), so intent ids and ``clOrdId`` stay within the venue's limits.
    """
    digest = hashlib.sha256(
        b"replay\x00"
        + strategy_id.encode()
        + b"\x00"
        + original_id.encode()
        + b"\x00"
        + request_id.encode()
    ).hexdigest()
    return f"s{digest[:31]}"
