"""How long after its receipt a signal's intents may still be sent, at most (ADR-0185).

A signal's deadline (``not_after_ns``, ADR-0045) is its receipt + its ``delay`` (at most
:data:`~phalanx_common.events.MAX_DELAY_S`) + its strategy's maximum age for its kind (at most
:data:`MAX_SIGNAL_AGE_S`), or its ``expiresAt`` when sooner. Ingest refuses a longer age; the
planner never gives an intent a later deadline than :data:`LONGEST_DEADLINE_S` after receipt.
The intent claims' time to live (``subjects.Buckets.INTENTS``) is chosen from this bound.
"""

from __future__ import annotations

from phalanx_common.events import MAX_DELAY_S

__all__ = ["LONGEST_DEADLINE_S", "MAX_SIGNAL_AGE_S"]

#: the longest maximum entry or exit age a strategy (or ingest's default) may set, in seconds
MAX_SIGNAL_AGE_S = 86_400
#: receipt -> deadline, at most, in seconds
LONGEST_DEADLINE_S = MAX_DELAY_S + MAX_SIGNAL_AGE_S
