"""Faults on demand, for one login or for everyone (``/admin/faults``).

A :class:`Faults` set applies to the requests of one user (``userId``) or, without one, to every
request. Counted faults (``dropResponses``, ``errorCount``, ``penaltyCount``) are used up one
request at a time; a user's own faults are used before the global ones.

- ``latencyMs``: every response is delayed (REST: the HTTP answer; socket: the response frame and
  the events that came with it). ``latencyJitterMs`` spreads each delay uniformly over
  ``latencyMs ± latencyJitterMs`` (drawn per response; a cloud region away from the venue).
- ``dropResponses``: the next N ``order/placeoso`` / ``order/placeorder`` are **accepted** (the
  order exists and its events are sent) but the response is lost: on the socket it is never
  sent; over REST the request hangs for ``sim_fault_drop_hang_s`` and then gets 504. The client
  sees an unknown outcome and must look the order up by ``clOrdId``.
- ``errorStatus`` + ``errorCount``: the next N requests (optionally only ``endpoints``) are
  answered with that 5xx status **before** being handled (nothing happened). On the socket the
  status is the response frame's ``s`` field (``{"s":503,"i":<id>,"d":"Service Unavailable"}``),
  as Tradovate reports a failed request; ``authorize`` is exempt unless it counts as a request
  (``countAuthorize``).
- ``dropRate`` / ``errorRate``: the same two faults drawn at random instead of counted: each
  accepted order's response is lost with probability ``dropRate``, each request (optionally
  only ``endpoints``) gets ``errorStatus`` with probability ``errorRate``. They are never used
  up; ``seed`` makes the draws repeatable (``POST`` with a seed re-seeds the venue's draws).
- ``penaltyCount`` + ``penaltyTimeS``: a penalty storm: the next N requests get a p-ticket
  (not counted as violations); resending after ``p-time`` with the ticket is honoured.

Socket drops and ``shutdown`` events are immediate actions (``POST /admin/sockets/drop``,
``POST /admin/shutdown``), not stored faults.
"""

# ruff: noqa: N815

from __future__ import annotations

import msgspec

__all__ = ["DROPPABLE", "Faults"]

#: endpoints whose response the ``dropResponses`` fault can lose
DROPPABLE = frozenset({"order/placeoso", "order/placeorder"})


class Faults(msgspec.Struct, kw_only=True):
    """Faults of one user or of all (the body of ``POST /admin/faults``)."""

    userId: int | None = None
    latencyMs: float = 0.0
    latencyJitterMs: float = 0.0
    dropResponses: int = 0
    errorStatus: int = 503
    errorCount: int = 0
    penaltyCount: int = 0
    penaltyTimeS: float = 0.0
    endpoints: list[str] | None = None
    dropRate: float = 0.0
    errorRate: float = 0.0
    seed: int | None = None

    def applies_to(self, endpoint: str) -> bool:
        """Whether the counted faults apply to an endpoint (all when ``endpoints`` is unset)."""
        return self.endpoints is None or endpoint in {e.lower() for e in self.endpoints}

    @property
    def idle(self) -> bool:
        """Whether the set does nothing."""
        return (
            self.latencyMs <= 0
            and self.dropResponses <= 0
            and self.errorCount <= 0
            and self.penaltyCount <= 0
            and self.dropRate <= 0
            and self.errorRate <= 0
        )
