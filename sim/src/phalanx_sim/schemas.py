"""Request bodies and response shapes of the Tradovate endpoints the simulator serves.

Names and casing are Tradovate's (docs/tradovate-protocol.md §2, §3.1, §4). Unknown fields in a
request (``p-ticket``, ``admin``...) are ignored, as the venue ignores what it does not need.
"""

# ruff: noqa: N815

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "AccessTokenRequest",
    "AccessTokenResponse",
    "Bracket",
    "CancelOrderBody",
    "CommandResult",
    "ErrorText",
    "LiquidatePositionBody",
    "ModifyOrderBody",
    "PlaceOrderBody",
    "PlaceOrderResult",
    "PlaceOsoBody",
    "PlaceOsoResult",
    "PropsData",
    "SyncRequestBody",
    "WsEvent",
    "WsResponse",
]


class AccessTokenRequest(msgspec.Struct, kw_only=True):
    """``POST /auth/accesstokenrequest`` body."""

    name: str
    password: str
    appId: str | None = None
    appVersion: str | None = None
    deviceId: str | None = None
    cid: int | str | None = None
    sec: str | None = None


class AccessTokenResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A successful login (or renewal)."""

    accessToken: str
    mdAccessToken: str
    expirationTime: str
    passwordExpirationTime: str
    userStatus: str
    userId: int
    name: str
    hasLive: bool


class ErrorText(msgspec.Struct):
    """``{"errorText": ...}``: how auth endpoints fail (with HTTP 200)."""

    errorText: str


class Bracket(msgspec.Struct, kw_only=True):
    """A ``RestrainedOrderVersion``: a bracket leg (no quantity, no symbol)."""

    action: str
    orderType: str
    price: float | None = None
    stopPrice: float | None = None
    clOrdId: str | None = None
    maxShow: int | None = None
    pegDifference: float | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None


class PlaceOrderBody(msgspec.Struct, kw_only=True):
    """``POST /order/placeorder`` body."""

    action: str
    symbol: str
    orderQty: int
    orderType: str
    accountSpec: str | None = None
    accountId: int | None = None
    clOrdId: str | None = None
    price: float | None = None
    stopPrice: float | None = None
    maxShow: int | None = None
    pegDifference: float | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool = False


class PlaceOsoBody(PlaceOrderBody, kw_only=True):
    """``POST /order/placeoso`` body: an entry plus ``bracket1`` and optional ``bracket2``."""

    bracket1: Bracket
    bracket2: Bracket | None = None


class CancelOrderBody(msgspec.Struct, kw_only=True):
    """``POST /order/cancelorder`` body."""

    orderId: int
    clOrdId: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool = False


class ModifyOrderBody(msgspec.Struct, kw_only=True):
    """``POST /order/modifyorder`` body."""

    orderId: int
    orderQty: int
    orderType: str
    clOrdId: str | None = None
    price: float | None = None
    stopPrice: float | None = None
    maxShow: int | None = None
    pegDifference: float | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool = False


class LiquidatePositionBody(msgspec.Struct, kw_only=True):
    """``POST /order/liquidateposition`` body."""

    accountId: int
    contractId: int
    admin: bool = False
    customTag50: str | None = None
    isAutomated: bool = False


class SyncRequestBody(msgspec.Struct, kw_only=True):
    """``user/syncrequest`` body."""

    users: list[int] | None = None
    accounts: list[int] | None = None
    splitResponses: bool | None = None
    entityTypes: list[str] | None = None


class PlaceOrderResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``{orderId}`` or ``{failureReason, failureText}``."""

    orderId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class PlaceOsoResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``{orderId, oso1Id, oso2Id}`` or ``{failureReason, failureText}``."""

    orderId: int | None = None
    oso1Id: int | None = None
    oso2Id: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class CommandResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``{commandId}`` or ``{failureReason, failureText}``."""

    commandId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class WsResponse(msgspec.Struct, omit_defaults=True):
    """A response on the socket: ``{"s": status, "i": requestId, "d": payload}``."""

    s: int
    i: int
    d: Any = None


class WsEvent(msgspec.Struct):
    """An event on the socket: ``{"e": kind, "d": payload}``."""

    e: str
    d: Any


class PropsData(msgspec.Struct):
    """``d`` of a ``props`` event: ``{"entityType", "eventType", "entity"}``."""

    entityType: str
    eventType: str
    entity: Any
