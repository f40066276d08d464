"""Tradovate's SockJS-style WebSocket framing.

Server frames (first character): ``o`` open, ``h`` heartbeat, ``a[...]`` a JSON array of messages,
``c[code,"reason"]`` close. A message is a response ``{"s","i","d"}`` (matched to a request by
``i``) or an event ``{"e","d"}``; a ``props`` event carries ``{entityType, eventType, entity}``
where ``entity`` may be one object or an array. Client requests are the text
``<endpoint>\\n<id>\\n<query>\\n<body>``; the client heartbeat is ``[]``.

Source: docs/tradovate-protocol.md §3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from phalanx_tradovate import wire
from phalanx_tradovate.errors import ProtocolError

__all__ = [
    "CLIENT_HEARTBEAT",
    "ArrayFrame",
    "CloseFrame",
    "EventMessage",
    "Frame",
    "HeartbeatFrame",
    "OpenFrame",
    "PropsEvent",
    "Response",
    "encode_request",
    "parse_frame",
    "parse_props",
]

CLIENT_HEARTBEAT: Final = "[]"
"""What the client sends every 2.5 s, on its own timer."""

EntityType = str
_DECODE_TYPES: dict[str, type[msgspec.Struct]] = {
    "account": wire.Account,
    "order": wire.Order,
    "orderVersion": wire.OrderVersion,
    "fill": wire.Fill,
    "position": wire.Position,
    "command": wire.Command,
    "commandReport": wire.CommandReport,
    "executionReport": wire.ExecutionReport,
    "cashBalance": wire.CashBalance,
    "contract": wire.Contract,
}


@dataclass(frozen=True, slots=True)
class OpenFrame:
    """``o``: the server accepted the connection; authorize now."""


@dataclass(frozen=True, slots=True)
class HeartbeatFrame:
    """``h``: a server heartbeat (never answered; the client keeps its own timer)."""


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """``c[code, "reason"]``: the server closes the connection."""

    code: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """A response to request ``request_id`` with an HTTP-like ``status`` and payload ``data``."""

    status: int
    request_id: int
    data: Any = None


@dataclass(frozen=True, slots=True)
class EventMessage:
    """A server event: ``kind`` is ``props``, ``shutdown``, ``md``, ``chart`` or ``clock``."""

    kind: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class ArrayFrame:
    """``a[...]``: the messages carried by one frame, in order."""

    messages: list[Response | EventMessage] = field(default_factory=list)


Frame = OpenFrame | HeartbeatFrame | CloseFrame | ArrayFrame


@dataclass(frozen=True, slots=True)
class PropsEvent:
    """One entity change from a ``props`` event (an array entity is split into several)."""

    entity_type: str
    event_type: Literal["Created", "Updated", "Deleted"] | str
    entity: dict[str, Any]

    def decode_entity(self) -> msgspec.Struct | dict[str, Any]:
        """Return the entity as its wire struct (``order`` → :class:`wire.Order` ...).

        Entity types without a struct are returned as the plain dict.

        Raises:
            msgspec.ValidationError: if the entity does not fit its struct.
        """
        type_ = _DECODE_TYPES.get(self.entity_type)
        if type_ is None:
            return self.entity
        return wire.convert(self.entity, type_)


def parse_frame(text: str | bytes) -> Frame:
    """Parse one server frame.

    Raises:
        ProtocolError: if the frame is not one of ``o``, ``h``, ``a[...]``, ``c[...]``.
    """
    if isinstance(text, bytes):
        text = text.decode()
    if not text:
        raise ProtocolError("empty frame")
    kind = text[0]
    if kind == "o":
        return OpenFrame()
    if kind == "h":
        return HeartbeatFrame()
    if kind not in "ac":
        raise ProtocolError(f"unknown frame type {kind!r}")
    try:
        payload = wire.decode_json(text[1:]) if len(text) > 1 else []
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed {kind!r} frame: {exc}") from exc
    if kind == "c":
        code = payload[0] if isinstance(payload, list) and payload else 0
        reason = payload[1] if isinstance(payload, list) and len(payload) > 1 else ""
        return CloseFrame(int(code) if isinstance(code, int) else 0, str(reason))
    if not isinstance(payload, list):
        raise ProtocolError("'a' frame does not hold an array")
    messages: list[Response | EventMessage] = []
    for item in payload:
        if not isinstance(item, dict):
            raise ProtocolError(f"'a' frame holds a non-object: {item!r}")
        if "e" in item:
            messages.append(EventMessage(str(item["e"]), item.get("d")))
        elif "i" in item:
            messages.append(Response(int(item.get("s", 0)), int(item["i"]), item.get("d")))
        else:
            raise ProtocolError(f"message is neither a response nor an event: {item!r}")
    return ArrayFrame(messages)


def parse_props(data: Any) -> list[PropsEvent]:
    """Split the ``d`` of a ``props`` event into one :class:`PropsEvent` per entity.

    Raises:
        ProtocolError: if ``data`` is not a props payload.
    """
    if not isinstance(data, dict) or "entityType" not in data:
        raise ProtocolError(f"not a props payload: {data!r}")
    entity_type = str(data["entityType"])
    event_type = str(data.get("eventType", ""))
    entity = data.get("entity")
    entities = entity if isinstance(entity, list) else [entity]
    return [PropsEvent(entity_type, event_type, e) for e in entities if isinstance(e, dict)]


def encode_request(
    endpoint: str,
    request_id: int,
    query: str = "",
    body: msgspec.Struct | dict[str, Any] | list[Any] | str | bytes | None = None,
) -> str:
    """Build the request text ``<endpoint>\\n<id>\\n<query>\\n<body>``.

    A struct, dict or list body is JSON-encoded (decimals as numbers); a ``str`` body is sent raw
    (``authorize`` sends the bare token); ``bytes`` are taken as already-encoded JSON.
    """
    if body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    elif isinstance(body, bytes):
        text = body.decode()
    else:
        text = wire.encode(body).decode()
    return f"{endpoint.lstrip('/')}\n{request_id}\n{query.lstrip('?')}\n{text}"
