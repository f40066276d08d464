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
from decimal import Decimal
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


class EventMessage:
    """A server event: ``kind`` is ``props``, ``shutdown``, ``md``, ``chart`` or ``clock``.

    ``data`` is decoded from the frame on first use (ADR-0160): the socket hands a ``props``
    event's undecoded ``raw`` payload to :func:`parse_props`, which decodes only the envelope.
    """

    __slots__ = ("_data", "_raw", "kind")

    def __init__(self, kind: str, data: Any = None, *, raw: msgspec.Raw | None = None) -> None:
        self.kind = kind
        self._data = data
        self._raw = raw

    @property
    def raw(self) -> msgspec.Raw | None:
        """The payload as it came in the frame (``None`` when built from decoded data)."""
        return self._raw

    @property
    def data(self) -> Any:
        """The payload as decoded JSON (decimals exact)."""
        if self._raw is not None and self._data is None:
            self._data = wire.decode_json(self._raw)
        return self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventMessage):
            return NotImplemented
        return (self.kind, self.data) == (other.kind, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventMessage({self.kind!r}, {self.data!r})"


@dataclass(frozen=True, slots=True)
class ArrayFrame:
    """``a[...]``: the messages carried by one frame, in order."""

    messages: list[Response | EventMessage] = field(default_factory=list)


Frame = OpenFrame | HeartbeatFrame | CloseFrame | ArrayFrame


class PropsEvent:
    """One entity change from a ``props`` event (an array entity is split into several).

    Built from a frame, it keeps the entity undecoded (``raw``) until asked (ADR-0160):
    :meth:`decode_entity` decodes it straight into its wire struct, and ``entity`` (the plain
    dict) is decoded only when read. Entity types a consumer ignores cost no decoding.
    """

    __slots__ = ("_entity", "_raw", "entity_type", "event_type")

    def __init__(
        self,
        entity_type: str,
        event_type: Literal["Created", "Updated", "Deleted"] | str,
        entity: dict[str, Any] | None = None,
        *,
        raw: msgspec.Raw | None = None,
    ) -> None:
        self.entity_type = entity_type
        self.event_type = event_type
        self._entity = entity
        self._raw = raw

    @property
    def entity(self) -> dict[str, Any]:
        """The entity as a plain dict (decimals exact)."""
        if self._entity is None:
            decoded = wire.decode_json(self._raw) if self._raw is not None else None
            self._entity = decoded if isinstance(decoded, dict) else {}
        return self._entity

    def decode_entity(self) -> msgspec.Struct | dict[str, Any]:
        """Return the entity as its wire struct (``order`` → :class:`wire.Order` ...).

        Entity types without a struct are returned as the plain dict.

        Raises:
            msgspec.ValidationError: if the entity does not fit its struct.
        """
        type_ = _DECODE_TYPES.get(self.entity_type)
        if type_ is None:
            return self.entity
        if self._raw is not None and self._entity is None:
            decoded: msgspec.Struct = _entity_decoder(type_).decode(self._raw)
            return decoded
        return wire.convert(self.entity, type_)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PropsEvent):
            return NotImplemented
        return (self.entity_type, self.event_type, self.entity) == (
            other.entity_type,
            other.event_type,
            other.entity,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PropsEvent({self.entity_type!r}, {self.event_type!r}, {self.entity!r})"


_entity_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {}


def _entity_decoder(type_: type[msgspec.Struct]) -> msgspec.json.Decoder[Any]:
    """One typed decoder per wire struct; lax like :func:`wire.convert` (``strict=False``)."""
    decoder = _entity_decoders.get(type_)
    if decoder is None:
        decoder = msgspec.json.Decoder(type_, strict=False, float_hook=Decimal)
        _entity_decoders[type_] = decoder
    return decoder


class _Message(msgspec.Struct):
    """One message of an ``a`` frame, its ``d`` left undecoded."""

    e: str | None = None
    i: int | None = None
    s: int = 0
    d: msgspec.Raw = msgspec.Raw(b"null")


class _PropsPayload(msgspec.Struct):
    """The ``d`` of a ``props`` event, its entity left undecoded."""

    entityType: str  # noqa: N815 - the venue's name
    eventType: str = ""  # noqa: N815
    entity: msgspec.Raw = msgspec.Raw(b"null")


_messages_decoder = msgspec.json.Decoder(list[_Message])
_props_decoder = msgspec.json.Decoder(_PropsPayload)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])


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
    body = text[1:]
    if kind == "c":
        try:
            payload = wire.decode_json(body) if body else []
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"malformed {kind!r} frame: {exc}") from exc
        code = payload[0] if isinstance(payload, list) and payload else 0
        reason = payload[1] if isinstance(payload, list) and len(payload) > 1 else ""
        return CloseFrame(int(code) if isinstance(code, int) else 0, str(reason))
    try:
        items = _messages_decoder.decode(body) if body else []
        return ArrayFrame([_message(item) for item in items])
    except msgspec.DecodeError as exc:  # also a message that is not an object
        raise ProtocolError(f"malformed {kind!r} frame: {exc}") from exc


def _message(item: _Message) -> Response | EventMessage:
    if item.e is not None:
        return EventMessage(item.e, raw=item.d)
    if item.i is not None:
        return Response(item.s, item.i, wire.decode_json(item.d))
    raise ProtocolError("message is neither a response nor an event")


def parse_props(data: Any) -> list[PropsEvent]:
    """Split the ``d`` of a ``props`` event into one :class:`PropsEvent` per entity.

    ``data`` is the decoded payload, or the frame's undecoded :class:`msgspec.Raw` (then only
    the envelope is decoded here; each entity stays raw until used).

    Raises:
        ProtocolError: if ``data`` is not a props payload.
    """
    if isinstance(data, msgspec.Raw):
        return _parse_raw_props(data)
    if not isinstance(data, dict) or "entityType" not in data:
        raise ProtocolError(f"not a props payload: {data!r}")
    entity_type = str(data["entityType"])
    event_type = str(data.get("eventType", ""))
    entity = data.get("entity")
    entities = entity if isinstance(entity, list) else [entity]
    return [PropsEvent(entity_type, event_type, e) for e in entities if isinstance(e, dict)]


def _parse_raw_props(data: msgspec.Raw) -> list[PropsEvent]:
    try:
        payload = _props_decoder.decode(data)
        raw = payload.entity
        entities = _raw_list_decoder.decode(raw) if _first(raw) == _ARRAY else [raw]
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not a props payload: {exc}") from exc
    return [
        PropsEvent(payload.entityType, payload.eventType, raw=e)
        for e in entities
        if _first(e) == _OBJECT
    ]


_ARRAY, _OBJECT = ord("["), ord("{")


def _first(raw: msgspec.Raw) -> int:
    """The first byte of a raw JSON value (msgspec strips the whitespace around it)."""
    return memoryview(raw)[0]


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
