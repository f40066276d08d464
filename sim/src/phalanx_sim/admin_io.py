"""What the simulator's admin API reads and answers: request bodies (camelCase, like the venue)
and the JSON views of orders and limits. The routes are :mod:`phalanx_sim.admin`."""

# ruff: noqa: N815

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import HTTPException, Request
from starlette.responses import Response

from phalanx_sim.faults import Faults
from phalanx_sim.fees import FeeRates
from phalanx_sim.limits import LimitConfig
from phalanx_sim.state import OrderRecord

__all__ = [
    "LIMIT_FIELDS",
    "CreateUserBody",
    "DropBody",
    "FeesBody",
    "HeldFillsBody",
    "LimitsBody",
    "MarketBody",
    "OAuthClientBody",
    "PartialFillBody",
    "PriceBody",
    "RiskBody",
    "ShutdownBody",
    "TradeBody",
    "account_param",
    "check_faults",
    "json_response",
    "limits_view",
    "order_view",
    "read_body",
]

_encoder = msgspec.json.Encoder()


class CreateUserBody(msgspec.Struct, kw_only=True):
    """``POST /admin/users`` body."""

    name: str
    password: str
    accounts: int | list[str] = 1


class PriceBody(msgspec.Struct, kw_only=True):
    """``POST /admin/prices`` body."""

    symbol: str
    price: float


class OAuthClientBody(msgspec.Struct, kw_only=True):
    """``POST /admin/oauth/clients`` body."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]


class MarketBody(msgspec.Struct, kw_only=True):
    """``POST /admin/market`` body."""

    open: bool


class RiskBody(msgspec.Struct, kw_only=True):
    """``POST /admin/risk`` body (``maxPosition`` null or 0: no limit)."""

    accountId: int
    maxPosition: int | None = None


class PartialFillBody(msgspec.Struct, kw_only=True):
    """``POST /admin/partialfills`` body (``qty`` 0: fill in full)."""

    accountId: int
    qty: int


class HeldFillsBody(msgspec.Struct, kw_only=True):
    """``POST /admin/heldfills`` body (``held`` false: fill at once again)."""

    accountId: int
    held: bool


class FeesBody(FeeRates, kw_only=True):
    """``PUT /admin/fees`` body: a product's fees per contract."""

    product: str


class TradeBody(msgspec.Struct, kw_only=True):
    """``POST /admin/trades`` body: a manual Market order."""

    accountId: int
    symbol: str
    action: str
    qty: int


class DropBody(msgspec.Struct, kw_only=True):
    """``POST /admin/sockets/drop`` body."""

    userId: int | None = None


class LimitsBody(msgspec.Struct, kw_only=True):
    """``PUT /admin/limits`` body: any subset of the limits."""

    enabled: bool | None = None
    perMinute: int | None = None
    perHour: int | None = None
    minuteS: float | None = None
    hourS: float | None = None
    countAuthorize: bool | None = None
    penaltyStrikes: int | None = None
    lockoutS: float | None = None
    renewPerHour: int | None = None
    syncPerHour: int | None = None
    meFailuresPerHour: int | None = None
    loginFailuresPerHour: int | None = None
    endpointScope: str | None = None


LIMIT_FIELDS = {
    "enabled": "enabled",
    "perMinute": "per_minute",
    "perHour": "per_hour",
    "minuteS": "minute_s",
    "hourS": "hour_s",
    "countAuthorize": "count_authorize",
    "penaltyStrikes": "penalty_strikes",
    "lockoutS": "lockout_s",
    "renewPerHour": "renew_per_hour",
    "syncPerHour": "sync_per_hour",
    "meFailuresPerHour": "me_failures_per_hour",
    "loginFailuresPerHour": "login_failures_per_hour",
    "endpointScope": "endpoint_scope",
}


def limits_view(config: LimitConfig) -> dict[str, Any]:
    return {name: getattr(config, attr) for name, attr in LIMIT_FIELDS.items()}


class ShutdownBody(msgspec.Struct, kw_only=True):
    """``POST /admin/shutdown`` body."""

    reasonCode: str = "Maintenance"
    reason: str = "Server is going to close this connection"
    userId: int | None = None


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(payload), status_code=status, media_type="application/json")


async def read_body(request: Request, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(await request.body(), type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def account_param(request: Request) -> int:
    value = request.query_params.get("accountId") or request.query_params.get("accountid")
    if value is None or not value.isdigit():
        raise HTTPException(status_code=400, detail="accountId query parameter is required")
    return int(value)


def order_view(rec: OrderRecord) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(rec.order)
    version = msgspec.to_builtins(rec.version)
    version.pop("id", None)
    version.pop("orderId", None)
    view.update(version)
    view["clOrdId"] = rec.new_command.command.clOrdId
    view["isAutomated"] = rec.new_command.command.isAutomated
    view["cumQty"] = rec.cum_qty
    if rec.avg_px is not None:
        view["avgPx"] = rec.avg_px
    view["symbol"] = rec.info.contract.name
    return view


def check_faults(faults: Faults) -> None:
    """400 unless a fault set's status and rates make sense."""
    if (faults.errorCount > 0 or faults.errorRate > 0) and not 500 <= faults.errorStatus <= 599:
        raise HTTPException(status_code=400, detail="errorStatus must be a 5xx status")
    if not (0 <= faults.dropRate <= 1 and 0 <= faults.errorRate <= 1):
        raise HTTPException(status_code=400, detail="dropRate and errorRate are in [0, 1]")
