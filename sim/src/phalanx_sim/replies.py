"""What an endpoint answers (:class:`Reply`) and the venue's refusal text."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ACCESS_DENIED", "Reply"]

ACCESS_DENIED = "Access is denied"


class Reply(NamedTuple):
    """What an endpoint answers: an HTTP-like status and a JSON-encodable payload.

    ``drop`` (the response is lost after the request was handled) and ``delay`` (seconds to
    hold the response) come from faults; the transports apply them.
    """

    status: int
    payload: Any = None
    user_id: int | None = None
    drop: bool = False
    delay: float = 0.0
