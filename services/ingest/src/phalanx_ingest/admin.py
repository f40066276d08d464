"""The admin API: strategies and subscriptions, behind ``Authorization: Bearer <admin token>``.

- ``POST /admin/strategies`` creates a strategy and shows its secret and webhook URL once;
- ``GET /admin/strategies`` and ``GET /admin/strategies/{strategy_id}`` never show a secret;
- ``PUT /admin/strategies/{strategy_id}/subscriptions/{account_id}`` subscribes one account;
- ``POST /admin/strategies/{strategy_id}/subscriptions:bulk`` subscribes many with one sizing;
- ``GET /admin/strategies/{strategy_id}/subscriptions`` lists them.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from phalanx_common.clock import Clock
from phalanx_common.http import admin_guard
from phalanx_common.records import StrategyRecord, SubscriptionRecord
from phalanx_ingest.strategies import (
    StrategyDirectory,
    StrategyLookupError,
    hash_secret,
    new_secret,
    new_strategy_id,
)
from phalanx_ingest.subscriptions import SubscriptionStore

__all__ = [
    "BulkSubscriptionIn",
    "BulkSubscriptionOut",
    "StrategyCreate",
    "StrategyCreated",
    "StrategyList",
    "StrategyView",
    "SubscriptionIn",
    "SubscriptionList",
    "SubscriptionView",
    "admin_router",
]

_MAX_BULK = 10_000


class StrategyCreate(BaseModel):
    """Body of ``POST /admin/strategies``."""

    name: str = Field(min_length=1, max_length=200)
    allowed_tickers: list[str] = Field(
        default_factory=list, description="Empty: any ticker is allowed."
    )


class StrategyCreated(BaseModel):
    """A new strategy, with its secret and webhook URL (shown only this once)."""

    strategy_id: str
    name: str
    secret: str
    webhook_url: str
    allowed_tickers: list[str]


class StrategyView(BaseModel):
    """A strategy as the admin API shows it (never its secret)."""

    strategy_id: str
    name: str
    allowed_tickers: list[str]
    created_ns: int


class StrategyList(BaseModel):
    """Body of ``GET /admin/strategies``."""

    strategies: list[StrategyView]


class SubscriptionIn(BaseModel):
    """Sizing of one account on one strategy."""

    multiplier: Decimal = Field(default=Decimal(1), gt=0)
    fixed_quantity: int | None = Field(default=None, ge=1)
    max_quantity: int | None = Field(default=None, ge=1)
    enabled: bool = True


class BulkSubscriptionIn(SubscriptionIn):
    """Body of ``POST .../subscriptions:bulk``: the same sizing for many accounts."""

    account_ids: list[int] = Field(min_length=1, max_length=_MAX_BULK)


class SubscriptionView(BaseModel):
    """One subscription (``multiplier`` is a decimal string)."""

    strategy_id: str
    account_id: int
    multiplier: Decimal
    fixed_quantity: int | None
    max_quantity: int | None
    enabled: bool


class SubscriptionList(BaseModel):
    """Body of ``GET .../subscriptions``."""

    strategy_id: str
    subscriptions: list[SubscriptionView]


class BulkSubscriptionOut(BaseModel):
    """Answer of a bulk subscription: how many accounts are now subscribed."""

    strategy_id: str
    subscribed: int
    account_ids: list[int]


def _view(record: StrategyRecord) -> StrategyView:
    return StrategyView(
        strategy_id=record.strategy_id,
        name=record.name,
        allowed_tickers=list(record.allowed_tickers),
        created_ns=record.created_ns,
    )


def _sub_view(record: SubscriptionRecord) -> SubscriptionView:
    return SubscriptionView(
        strategy_id=record.strategy_id,
        account_id=record.account_id,
        multiplier=record.multiplier,
        fixed_quantity=record.fixed_quantity,
        max_quantity=record.max_quantity,
        enabled=record.enabled,
    )


def _record(strategy_id: str, account_id: int, body: SubscriptionIn) -> SubscriptionRecord:
    return SubscriptionRecord(
        strategy_id=strategy_id,
        account_id=account_id,
        multiplier=body.multiplier,
        fixed_quantity=body.fixed_quantity,
        max_quantity=body.max_quantity,
        enabled=body.enabled,
    )


def admin_router(
    strategies: StrategyDirectory,
    subscriptions: SubscriptionStore,
    admin_token: str,
    public_base_url: str,
    clock: Clock,
) -> APIRouter:
    """The admin routes, bound to their collaborators and guarded by the admin token.

    Args:
        strategies: The strategy directory (writes go to its KV bucket).
        subscriptions: Subscription and account storage.
        admin_token: The bearer token the admin API requires.
        public_base_url: Base of the webhook URL handed out on creation.
        clock: Source of ``created_ns``.
    """
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(admin_token))]
    )
    base_url = public_base_url.rstrip("/")

    async def _strategy(strategy_id: str) -> StrategyRecord:
        try:
            record = await strategies.lookup(strategy_id)
        except StrategyLookupError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "strategy store unreachable; retry shortly"
            ) from None
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strategy {strategy_id!r}")
        return record

    @router.post("/strategies", status_code=status.HTTP_201_CREATED)
    async def create_strategy(body: StrategyCreate) -> StrategyCreated:
        """Create a strategy; the answer holds its secret and webhook URL (shown once)."""
        secret = new_secret()
        tickers = tuple(dict.fromkeys(t.strip() for t in body.allowed_tickers if t.strip()))
        record = StrategyRecord(
            strategy_id=new_strategy_id(),
            name=body.name,
            secret_sha256=hash_secret(secret),
            allowed_tickers=tickers,
            created_ns=clock.time_ns(),
        )
        await strategies.create(record)
        return StrategyCreated(
            strategy_id=record.strategy_id,
            name=record.name,
            secret=secret,
            webhook_url=f"{base_url}/webhooks/{record.strategy_id}/{secret}",
            allowed_tickers=list(tickers),
        )

    @router.get("/strategies")
    async def list_strategies() -> StrategyList:
        """Every strategy (without secrets)."""
        return StrategyList(strategies=[_view(r) for r in strategies.all()])

    @router.get("/strategies/{strategy_id}")
    async def get_strategy(strategy_id: str) -> StrategyView:
        """One strategy (without its secret)."""
        return _view(await _strategy(strategy_id))

    @router.put("/strategies/{strategy_id}/subscriptions/{account_id}")
    async def put_subscription(
        strategy_id: str, account_id: int, body: SubscriptionIn
    ) -> SubscriptionView:
        """Subscribe one account (or change its sizing); 404 if the account is unknown."""
        await _strategy(strategy_id)
        if await subscriptions.missing_accounts([account_id]):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"no account {account_id}: accounts appear once a broker login is linked",
            )
        record = _record(strategy_id, account_id, body)
        await subscriptions.put([record])
        return _sub_view(record)

    @router.post("/strategies/{strategy_id}/subscriptions:bulk")
    async def bulk_subscribe(strategy_id: str, body: BulkSubscriptionIn) -> BulkSubscriptionOut:
        """Subscribe many accounts with the same sizing; none is written if any is unknown."""
        await _strategy(strategy_id)
        account_ids = sorted(set(body.account_ids))
        missing = await subscriptions.missing_accounts(account_ids)
        if missing:
            shown = ", ".join(str(a) for a in missing[:20])
            more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"unknown accounts: {shown}{more}; nothing was subscribed",
            )
        await subscriptions.put([_record(strategy_id, a, body) for a in account_ids])
        return BulkSubscriptionOut(
            strategy_id=strategy_id, subscribed=len(account_ids), account_ids=account_ids
        )

    @router.get("/strategies/{strategy_id}/subscriptions")
    async def list_subscriptions(strategy_id: str) -> SubscriptionList:
        """Every subscription of a strategy, by account id."""
        await _strategy(strategy_id)
        records = await subscriptions.for_strategy(strategy_id)
        return SubscriptionList(
            strategy_id=strategy_id, subscriptions=[_sub_view(r) for r in records]
        )

    return router
