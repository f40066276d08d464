"""SockJS-style frames of Tradovate's WebSocket protocol (docs/tradovate-protocol.md §3).

Server → client: ``o`` (open), ``h`` (heartbeat), ``a[...]`` (a JSON array of messages),
``c[code,"reason"]`` (close). Client → server: ``[]`` (heartbeat) or a request
``<endpoint>\\n<id>\\n<query>\\n<body>``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from phalanx_sim.schemas import WsEvent, WsResponse

__all__ = [
    "HEARTBEAT",
    "OPEN",
    "ClientRequest",
    "array_frame",
    "close_frame",
    "encode_event",
    "encode_props",
    "encode_response",
    "parse_client_frame",
]

OPEN = "o"
HEARTBEAT = "h"

_encoder = msgspec.json.Encoder()


class ClientRequest(NamedTuple):
    """A parsed client request frame."""

    endpoint: str
    request_id: int
    query: str
    body: str


def parse_client_frame(text: str) -> ClientRequest | None:
    """Parse ``<endpoint>\\n<id>\\n<query>\\n<body>``; ``None`` for a heartbeat ``[]``.

    Missing trailing lines count as empty. The body may itself contain newlines.

    Raises:
        ValueError: if the frame has no endpoint or no integer request id.
    """
    if text.strip() == "[]":
        return None
    parts = text.split("\n", 3)
    endpoint = parts[0].strip()
    if not endpoint or len(parts) < 2:
        raise ValueError("request frame needs <endpoint>\\n<id>")
    request_id = int(parts[1].strip())
    query = parts[2].strip() if len(parts) > 2 else ""
    body = parts[3] if len(parts) > 3 else ""
    return ClientRequest(endpoint, request_id, query, body)


def encode_response(status: int, request_id: int, payload: Any = None) -> bytes:
    """One response message ``{"s":..,"i":..,"d":..}`` (``d`` left out when ``None``)."""
    return _encoder.encode(WsResponse(status, request_id, payload))


def encode_event(kind: str, payload: Any) -> bytes:
    """One event message ``{"e":..,"d":..}``."""
    return _encoder.encode(WsEvent(kind, payload))


_props_prefixes: dict[tuple[str, str], bytes] = {}


def encode_props(entity_type: str, event_type: str, entity: Any) -> bytes:
    """One ``props`` event ``{"e":"props","d":{"entityType","eventType","entity"}}``.

    Byte-identical to ``encode_event("props", PropsData(...))``, built from a cached prefix
    because it is the hottest path of the simulator.
    """
    key = (entity_type, event_type)
    prefix = _props_prefixes.get(key)
    if prefix is None:
        head = _encoder.encode({"entityType": entity_type, "eventType": event_type})
        prefix = _props_prefixes[key] = b'{"e":"props","d":' + head[:-1] + b',"entity":'
    return prefix + _encoder.encode(entity) + b"}}"


def array_frame(messages: list[bytes]) -> str:
    """An ``a[...]`` frame holding already encoded messages."""
    return "a[" + b",".join(messages).decode() + "]"


def close_frame(code: int, reason: str) -> str:
    """A ``c[code,"reason"]`` frame."""
    return "c" + _encoder.encode([code, reason]).decode()
