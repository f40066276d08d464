"""Where the matching engine reports every entity change (the WebSocket hub, or nowhere)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from phalanx_sim.entities import Entity

__all__ = ["Emit", "EventSink", "NullSink"]

#: Report one entity change: ``(account_id, entity_type, event_type, entity)``.
Emit = Callable[[int, str, str, Entity], None]


class EventSink(Protocol):
    """Receives every entity change; the WebSocket hub turns them into ``props`` events."""

    def publish(self, account_id: int, entity_type: str, event_type: str, entity: Entity) -> None:
        """Called synchronously for each change, in the order the changes happen."""


class NullSink:
    """An :class:`EventSink` that drops everything."""

    def publish(self, account_id: int, entity_type: str, event_type: str, entity: Entity) -> None:
        """Drop the event."""
