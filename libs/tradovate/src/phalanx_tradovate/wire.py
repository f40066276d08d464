"""Tradovate's wire types, named and cased exactly as Tradovate names them.

Every struct is frozen, keyword-only and ignores fields it does not know (the venue adds fields
over time). Prices are :class:`decimal.Decimal` in Python and JSON numbers on the wire. Fields left
as ``None`` are omitted when encoding; the compliance flag ``isAutomated`` is always sent as
``true`` unless explicitly set to ``False``, and ``admin`` on ``liquidateposition`` is always sent.

Sources: docs/tradovate-protocol.md §2, §3.1, §4 (from Tradovate's OpenAPI description).

The types live in ``wire_auth``, ``wire_entities`` and ``wire_requests`` (on ``wire_base``); this
module is their one namespace (``wire.Order``) and holds the codec.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from phalanx_tradovate.wire_auth import (
    AccessTokenRequest,
    AccessTokenResponse,
    MeResponse,
    OAuthTokenRequest,
    OAuthTokenResponse,
)
from phalanx_tradovate.wire_base import (
    Action,
    OrderType,
    TimeInForce,
    WireStruct,
)
from phalanx_tradovate.wire_entities import (
    Account,
    CashBalance,
    Command,
    CommandReport,
    Contract,
    ExecutionReport,
    Fill,
    FillFee,
    Order,
    OrderVersion,
    Position,
)
from phalanx_tradovate.wire_requests import (
    DEFAULT_ENTITY_TYPES,
    CancelOrder,
    CommandResult,
    LiquidatePosition,
    ModifyOrder,
    PlaceOrder,
    PlaceOrderResult,
    PlaceOso,
    PlaceOsoResult,
    RestrainedOrderVersion,
    SyncRequest,
    SyncSnapshot,
)

__all__ = [
    "DEFAULT_ENTITY_TYPES",
    "AccessTokenRequest",
    "AccessTokenResponse",
    "Account",
    "Action",
    "CancelOrder",
    "CashBalance",
    "Command",
    "CommandReport",
    "CommandResult",
    "Contract",
    "ExecutionReport",
    "Fill",
    "FillFee",
    "LiquidatePosition",
    "MeResponse",
    "ModifyOrder",
    "OAuthTokenRequest",
    "OAuthTokenResponse",
    "Order",
    "OrderType",
    "OrderVersion",
    "PlaceOrder",
    "PlaceOrderResult",
    "PlaceOso",
    "PlaceOsoResult",
    "Position",
    "RestrainedOrderVersion",
    "SyncRequest",
    "SyncSnapshot",
    "TimeInForce",
    "WireStruct",
    "convert",
    "decode_json",
    "encode",
    "encode_with_ticket",
]

T = TypeVar("T")


# -- codec -----------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder(decimal_format="number")
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(float_hook=Decimal)


def encode(obj: msgspec.Struct | dict[str, Any] | list[Any]) -> bytes:
    """Encode a wire struct (or plain JSON value) as Tradovate expects: decimals as numbers."""
    return _encoder.encode(obj)


def encode_with_ticket(obj: msgspec.Struct | dict[str, Any], ticket: str | None) -> bytes:
    """Encode ``obj`` and, when ``ticket`` is set, add ``"p-ticket": ticket`` to the object.

    This is how a request is resent after a time penalty: the same body plus the ticket.
    """
    body = _encoder.encode(obj)
    if not ticket:
        return body
    extra = b'"p-ticket":' + _encoder.encode(ticket)
    if body == b"{}":
        return b"{" + extra + b"}"
    return body[:-1] + b"," + extra + b"}"


def decode_json(data: bytes | str) -> Any:
    """Decode any JSON from the venue; non-integral numbers become :class:`Decimal` exactly."""
    return _any_decoder.decode(data)


def convert(obj: Any, type_: type[T]) -> T:
    """Convert decoded JSON (from :func:`decode_json`) into a wire type, ignoring unknown fields.

    Raises:
        msgspec.ValidationError: if the value does not fit the type.
    """
    return msgspec.convert(obj, type_, strict=False)
