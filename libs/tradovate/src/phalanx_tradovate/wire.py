# ruff: noqa: N815
"""Tradovate's wire types, named and cased exactly as Tradovate names them.

Every struct is frozen, keyword-only and ignores fields it does not know (the venue adds fields
over time). Prices are :class:`decimal.Decimal` in Python and JSON numbers on the wire. Fields left
as ``None`` are omitted when encoding; the compliance flag ``isAutomated`` is always sent as
``true`` unless explicitly set to ``False``, and ``admin`` on ``liquidateposition`` is always sent.

Sources: docs/tradovate-protocol.md §2, §3.1, §4 (from Tradovate's OpenAPI description).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Literal, TypeVar

import msgspec
from msgspec.structs import force_setattr

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

Action = Literal["Buy", "Sell"]
OrderType = Literal[
    "Limit", "MIT", "Market", "QTS", "Stop", "StopLimit", "TrailingStop", "TrailingStopLimit"
]
TimeInForce = Literal["Day", "FOK", "GTC", "GTD", "IOC"]

T = TypeVar("T")


class WireStruct(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every wire struct: frozen, keyword-only, ``None`` fields omitted when encoding."""


# -- auth ------------------------------------------------------------------------------------


class AccessTokenRequest(WireStruct, frozen=True, kw_only=True):
    """Body of ``POST /auth/accesstokenrequest`` (username/password API access)."""

    name: str
    password: str
    appId: str | None = None
    appVersion: str | None = None
    deviceId: str | None = None
    cid: int | str | None = None
    sec: str | None = None

    def __repr__(self) -> str:
        return f"AccessTokenRequest(name={self.name!r}, appId={self.appId!r})"


class AccessTokenResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of ``accesstokenrequest`` and ``renewaccesstoken``.

    ``errorText`` is set (with HTTP 200) when the login failed; the REST client raises then.
    """

    accessToken: str | None = None
    mdAccessToken: str | None = None
    expirationTime: str | None = None
    userId: int | None = None
    name: str | None = None
    userStatus: str | None = None
    errorText: str | None = None
    hasLive: bool | None = None
    passwordExpirationTime: str | None = None

    def __repr__(self) -> str:
        return (
            f"AccessTokenResponse(userId={self.userId!r}, name={self.name!r}, "
            f"expirationTime={self.expirationTime!r}, errorText={self.errorText!r})"
        )


class OAuthTokenRequest(WireStruct, frozen=True, kw_only=True):
    """Body of the OAuth code exchange (``/auth/oauthtoken``), snake_case as Tradovate names it."""

    grant_type: str = "authorization_code"
    code: str
    redirect_uri: str
    client_id: str
    client_secret: str
    code_verifier: str | None = None


class OAuthTokenResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of the OAuth code exchange: a token, or ``error``/``error_description``."""

    access_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None
    error: str | None = None
    error_description: str | None = None


class MeResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of ``GET /auth/me``."""

    userId: int | None = None
    name: str | None = None
    fullName: str | None = None
    email: str | None = None
    emailVerified: bool | None = None
    isTrial: bool | None = None
    errorText: str | None = None


# -- entities --------------------------------------------------------------------------------


class Account(WireStruct, frozen=True, kw_only=True):
    """A broker account: ``id`` is the accountId, ``name`` the accountSpec."""

    id: int
    name: str
    userId: int | None = None
    accountType: str | None = None
    active: bool | None = None
    clearingHouseId: int | None = None
    riskCategoryId: int | None = None
    autoLiqProfileId: int | None = None
    marginAccountType: str | None = None
    legalStatus: str | None = None
    archived: bool | None = None
    readonly: bool | None = None


class Contract(WireStruct, frozen=True, kw_only=True):
    """A dated contract (``MNQZ5``)."""

    id: int
    name: str
    contractMaturityId: int | None = None
    status: str | None = None
    providerTickSize: Decimal | None = None


class Order(WireStruct, frozen=True, kw_only=True):
    """An order; price and quantity live on :class:`OrderVersion`."""

    id: int
    accountId: int | None = None
    contractId: int | None = None
    spreadDefinitionId: int | None = None
    timestamp: str | None = None
    action: Action | None = None
    ordStatus: str | None = None
    executionProviderId: int | None = None
    ocoId: int | None = None
    parentId: int | None = None
    linkedId: int | None = None
    admin: bool | None = None


class OrderVersion(WireStruct, frozen=True, kw_only=True):
    """Quantity, type and prices of an order."""

    id: int
    orderId: int | None = None
    orderQty: int | None = None
    orderType: str | None = None
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None


class Command(WireStruct, frozen=True, kw_only=True):
    """A command sent for an order; carries the client's ``clOrdId``."""

    id: int
    orderId: int | None = None
    timestamp: str | None = None
    clOrdId: str | None = None
    commandType: str | None = None
    commandStatus: str | None = None
    senderId: int | None = None
    userSessionId: int | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool | None = None


class CommandReport(WireStruct, frozen=True, kw_only=True):
    """The venue's report on a command (``RiskRejected`` etc.)."""

    id: int
    commandId: int | None = None
    timestamp: str | None = None
    commandStatus: str | None = None
    rejectReason: str | None = None
    text: str | None = None
    ordStatus: str | None = None


class ExecutionReport(WireStruct, frozen=True, kw_only=True):
    """An execution report (new, trade, canceled, rejected ...)."""

    id: int
    commandId: int | None = None
    name: str | None = None
    accountId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    orderId: int | None = None
    execType: str | None = None
    execRefId: str | None = None
    ordStatus: str | None = None
    action: Action | None = None
    cumQty: int | None = None
    avgPx: Decimal | None = None
    lastQty: int | None = None
    lastPx: Decimal | None = None
    rejectReason: str | None = None
    text: str | None = None
    exchangeOrderId: str | None = None


class Fill(WireStruct, frozen=True, kw_only=True):
    """A fill of an order."""

    id: int
    orderId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    action: Action | None = None
    qty: int | None = None
    price: Decimal | None = None
    active: bool | None = None
    finallyPaired: int | None = None


class FillFee(WireStruct, frozen=True, kw_only=True):
    """Commissions and fees of one fill (``fillFee/deps?masterid=<fill id>``); each amount
    comes with the id of its currency (1: USD)."""

    id: int
    clearingFee: Decimal | None = None
    clearingCurrencyId: int | None = None
    exchangeFee: Decimal | None = None
    exchangeCurrencyId: int | None = None
    nfaFee: Decimal | None = None
    nfaCurrencyId: int | None = None
    brokerageFee: Decimal | None = None
    brokerageCurrencyId: int | None = None
    ipFee: Decimal | None = None
    ipCurrencyId: int | None = None
    commission: Decimal | None = None
    commissionCurrencyId: int | None = None
    orderRoutingFee: Decimal | None = None
    orderRoutingCurrencyId: int | None = None


class Position(WireStruct, frozen=True, kw_only=True):
    """A position of an account in a contract; ``netPos`` is signed."""

    id: int
    accountId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    netPos: int | None = None
    netPrice: Decimal | None = None
    bought: int | None = None
    boughtValue: Decimal | None = None
    sold: int | None = None
    soldValue: Decimal | None = None
    prevPos: int | None = None
    prevPrice: Decimal | None = None


class CashBalance(WireStruct, frozen=True, kw_only=True):
    """Cash of an account."""

    id: int
    accountId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    currencyId: int | None = None
    amount: Decimal | None = None
    realizedPnL: Decimal | None = None
    weekRealizedPnL: Decimal | None = None


# -- commands --------------------------------------------------------------------------------


class RestrainedOrderVersion(WireStruct, frozen=True, kw_only=True):
    """A bracket leg of ``placeoso`` (absolute prices; no quantity or symbol)."""

    action: Action
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    clOrdId: str | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None


class _Automated(WireStruct, frozen=True, kw_only=True):
    """Mixin: ``isAutomated`` defaults to ``True`` and is always encoded (CME Rule 536-B)."""

    isAutomated: bool | None = None

    def __post_init__(self) -> None:
        if self.isAutomated is None:
            force_setattr(self, "isAutomated", True)


class PlaceOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/placeorder``. Send both ``accountId`` and ``accountSpec``."""

    accountSpec: str
    accountId: int
    action: Action
    symbol: str
    orderQty: int
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    clOrdId: str | None = None


class PlaceOso(PlaceOrder, frozen=True, kw_only=True):
    """Body of ``order/placeoso``: an entry plus one or two bracket legs (OCO when two)."""

    bracket1: RestrainedOrderVersion
    bracket2: RestrainedOrderVersion | None = None


class PlaceOrderResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``placeorder`` and ``liquidateposition``."""

    orderId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class PlaceOsoResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``placeoso``: entry id and the bracket leg ids."""

    orderId: int | None = None
    oso1Id: int | None = None
    oso2Id: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class CancelOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/cancelorder``."""

    orderId: int
    clOrdId: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None


class ModifyOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/modifyorder``: the new quantity, type and prices of a working order.

    Keep the order's type and time in force; the answer only means the command was queued.
    """

    orderId: int
    orderQty: int
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    clOrdId: str | None = None


class CommandResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``cancelorder``/``modifyorder``: the command was queued, not yet applied."""

    commandId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class LiquidatePosition(_Automated, frozen=True, kw_only=True):
    """Body of ``order/liquidateposition``: cancel the contract's orders and close the position.

    ``admin`` is required by the venue and always encoded (``false`` unless set).
    """

    accountId: int
    contractId: int
    admin: bool | None = None
    customTag50: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.admin is None:
            force_setattr(self, "admin", False)


# -- sync ------------------------------------------------------------------------------------

DEFAULT_ENTITY_TYPES: Final[tuple[str, ...]] = (
    "account",
    "position",
    "order",
    "orderVersion",
    "command",
    "commandReport",
    "executionReport",
    "fill",
    "cashBalance",
    "orderStrategy",
)
"""Entity types requested by ``user/syncrequest`` (newer servers default to none)."""


class SyncRequest(WireStruct, frozen=True, kw_only=True):
    """Body of ``user/syncrequest``; ``entityTypes`` is always sent explicitly."""

    users: list[int] | None = None
    accounts: list[int] | None = None
    splitResponses: bool | None = None
    entityTypes: list[str] | None = None

    def __post_init__(self) -> None:
        # Defaults are filled in here, not as field defaults, so omit_defaults never drops them:
        # the venue needs splitResponses and (on newer servers) an explicit entityTypes list.
        if self.splitResponses is None:
            force_setattr(self, "splitResponses", True)
        if self.entityTypes is None:
            force_setattr(self, "entityTypes", list(DEFAULT_ENTITY_TYPES))


class SyncSnapshot(WireStruct, frozen=True, kw_only=True):
    """The initial snapshot answered to ``user/syncrequest`` (the arrays Phalanx uses)."""

    users: list[dict[str, Any]] = msgspec.field(default_factory=list)
    accounts: list[Account] = msgspec.field(default_factory=list)
    positions: list[Position] = msgspec.field(default_factory=list)
    orders: list[Order] = msgspec.field(default_factory=list)
    orderVersions: list[OrderVersion] = msgspec.field(default_factory=list)
    commands: list[Command] = msgspec.field(default_factory=list)
    commandReports: list[CommandReport] = msgspec.field(default_factory=list)
    executionReports: list[ExecutionReport] = msgspec.field(default_factory=list)
    fills: list[Fill] = msgspec.field(default_factory=list)
    cashBalances: list[CashBalance] = msgspec.field(default_factory=list)
    contracts: list[Contract] = msgspec.field(default_factory=list)


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
