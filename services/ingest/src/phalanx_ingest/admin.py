"""The admin API: strategies, subscriptions and the signal log, behind
``Authorization: Bearer <admin token>``.

- ``POST /admin/strategies`` creates a strategy and shows its secret and webhook URL once;
- ``GET /admin/strategies`` and ``GET /admin/strategies/{strategy_id}`` never show a secret
  (``webhook_url`` holds ``{secret}`` in its place);
- ``PATCH /admin/strategies/{strategy_id}`` changes tickers, sender restrictions and limits;
- ``POST .../secret:rotate`` and ``.../signing-secret:rotate`` rotate with a grace period;
- ``PUT /admin/strategies/{strategy_id}/subscriptions/{account_id}`` subscribes one account;
- ``POST /admin/strategies/{strategy_id}/subscriptions:bulk`` subscribes many with one sizing;
- ``GET /admin/strategies/{strategy_id}/subscriptions`` lists them;
- ``GET /admin/strategies/{strategy_id}/signals`` and ``GET /admin/signals/{signal_id}``: the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import APIRouter, Depends, HTTPException, Query, status

from phalanx_common.clock import Clock
from phalanx_common.http import admin_guard
from phalanx_common.records import StrategyRecord, SubscriptionRecord
from phalanx_ingest.admin_models import (
    BulkSubscriptionIn,
    BulkSubscriptionOut,
    RotateIn,
    SecretRotated,
    SignalList,
    SigningSecretRotated,
    StrategyCreate,
    StrategyCreated,
    StrategyList,
    StrategyPatch,
    StrategyView,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionView,
)
from phalanx_ingest.responses import MessageCode
from phalanx_ingest.senders import parse_networks
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.signallog import SignalLog
from phalanx_ingest.signatures import new_signing_secret
from phalanx_ingest.strategies import (
    StrategyDirectory,
    StrategyLookupError,
    hash_secret,
    new_secret,
    new_strategy_id,
)
from phalanx_ingest.subscriptions import SubscriptionStore

__all__ = ["admin_router"]


def _view(record: StrategyRecord, base_url: str, defaults: IngestSettings) -> StrategyView:
    return StrategyView(
        max_quantity=record.max_quantity or defaults.max_signal_quantity,
        repeat_window_s=record.repeat_window_s or defaults.repeat_window_s,
        max_entry_age_s=record.max_entry_age_s or defaults.max_entry_age_s,
        max_exit_age_s=record.max_exit_age_s or defaults.max_exit_age_s,
        strategy_id=record.strategy_id,
        name=record.name,
        allowed_tickers=list(record.allowed_tickers),
        created_ns=record.created_ns,
        webhook_url=f"{base_url}/webhooks/{record.strategy_id}/{{secret}}",
        tradingview_only=record.tradingview_only,
        allowed_ips=list(record.allowed_ips),
        max_signal_age_s=record.max_signal_age_s,
        rate_limit_per_min=record.rate_limit_per_min,
        require_signature=record.require_signature,
        has_signing_secret=bool(record.signing_secret),
        previous_secret_valid_until_ns=record.previous_secret_expires_ns,
    )


def _tickers(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.strip() for t in values if t.strip()))


def _ips(values: list[str]) -> tuple[str, ...]:
    """Normalised sender networks; 422 ``invalid-ip-address-format`` on the first bad one."""
    try:
        networks = parse_networks(v for v in values if v.strip())
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"messageCode": MessageCode.INVALID_IP_ADDRESS_FORMAT, "message": f"{exc}."},
        ) from None
    return tuple(dict.fromkeys(str(n) for n in networks))


def _sub_view(record: SubscriptionRecord) -> SubscriptionView:
    return SubscriptionView(
        strategy_id=record.strategy_id,
        account_id=record.account_id,
        multiplier=record.multiplier,
        fixed_quantity=record.fixed_quantity,
        max_quantity=record.max_quantity,
        enabled=record.enabled,
        allow_add=record.allow_add,
        allow_reversal=record.allow_reversal,
    )


def _record(strategy_id: str, account_id: int, body: SubscriptionIn) -> SubscriptionRecord:
    return SubscriptionRecord(
        strategy_id=strategy_id,
        account_id=account_id,
        multiplier=body.multiplier,
        fixed_quantity=body.fixed_quantity,
        max_quantity=body.max_quantity,
        enabled=body.enabled,
        allow_add=body.allow_add,
        allow_reversal=body.allow_reversal,
    )


def admin_router(
    strategies: StrategyDirectory,
    subscriptions: SubscriptionStore,
    admin_token: str,
    public_base_url: str,
    clock: Clock,
    secret_grace_s: float = 24 * 3600.0,
    signal_log: SignalLog | None = None,
    defaults: IngestSettings | None = None,
) -> APIRouter:
    """The admin routes, bound to their collaborators and guarded by the admin token.

    Args:
        strategies: The strategy directory (writes go to its KV bucket).
        subscriptions: Subscription and account storage.
        admin_token: The bearer token the admin API requires.
        public_base_url: Base of the webhook URL handed out on creation.
        clock: Source of ``created_ns``.
        secret_grace_s: Default grace of a rotated-out secret.
        signal_log: The signal log (``None``: its routes answer 404).
        defaults: The service defaults a strategy's 0 settings stand for (shown in views).
    """
    ctx = _Context(
        strategies,
        subscriptions,
        clock,
        public_base_url.rstrip("/"),
        defaults or IngestSettings(),
        secret_grace_s,
        signal_log,
    )
    router = APIRouter(
        prefix="/admin", tags=["admin"], dependencies=[Depends(admin_guard(admin_token))]
    )
    _strategy_routes(router, ctx)
    _secret_routes(router, ctx)
    _subscription_routes(router, ctx)
    _signal_log_routes(router, ctx)
    return router


@dataclass(frozen=True)
class _Context:
    """What the admin routes work with."""

    strategies: StrategyDirectory
    subscriptions: SubscriptionStore
    clock: Clock
    base_url: str
    defaults: IngestSettings
    secret_grace_s: float
    signal_log: SignalLog | None

    async def strategy(self, strategy_id: str) -> StrategyRecord:
        """The strategy, or 404 (503 when the store cannot answer)."""
        try:
            record = await self.strategies.lookup(strategy_id)
        except StrategyLookupError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "strategy store unreachable; retry shortly"
            ) from None
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strategy {strategy_id!r}")
        return record

    async def change(
        self, strategy_id: str, change: Callable[[StrategyRecord], StrategyRecord]
    ) -> StrategyRecord:
        """Apply ``change`` to the strategy (404 if gone, 409 if it kept changing)."""
        await self.strategy(strategy_id)
        try:
            record = await self.strategies.update(strategy_id, change)
        except StrategyLookupError:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "the strategy kept changing; retry"
            ) from None
        if record is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no strategy {strategy_id!r}")
        return record


def _strategy_routes(router: APIRouter, ctx: _Context) -> None:
    """Create, list, read and change strategies."""
    strategies, clock, base_url, defaults = ctx.strategies, ctx.clock, ctx.base_url, ctx.defaults

    @router.post("/strategies", status_code=status.HTTP_201_CREATED)
    async def create_strategy(body: StrategyCreate) -> StrategyCreated:
        """Create a strategy; the answer holds its secret and webhook URL (shown once)."""
        secret = new_secret()
        tickers = _tickers(body.allowed_tickers)
        record = StrategyRecord(
            strategy_id=new_strategy_id(),
            name=body.name,
            secret_sha256=hash_secret(secret),
            allowed_tickers=tickers,
            created_ns=clock.time_ns(),
            tradingview_only=body.tradingview_only,
            allowed_ips=_ips(body.allowed_ips),
            max_signal_age_s=body.max_signal_age_s,
            rate_limit_per_min=body.rate_limit_per_min,
            require_signature=body.require_signature,
            max_quantity=body.max_quantity,
            repeat_window_s=body.repeat_window_s,
            max_entry_age_s=body.max_entry_age_s,
            max_exit_age_s=body.max_exit_age_s,
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
        return StrategyList(strategies=[_view(r, base_url, defaults) for r in strategies.all()])

    @router.get("/strategies/{strategy_id}")
    async def get_strategy(strategy_id: str) -> StrategyView:
        """One strategy (without its secret; ``webhook_url`` shows where the secret goes)."""
        return _view(await ctx.strategy(strategy_id), base_url, defaults)

    @router.patch("/strategies/{strategy_id}")
    async def patch_strategy(strategy_id: str, body: StrategyPatch) -> StrategyView:
        """Change a strategy's name, allowed tickers, sender restrictions or limits."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude_none=True)
        if "allowed_tickers" in changes:
            changes["allowed_tickers"] = _tickers(changes["allowed_tickers"])
        if "allowed_ips" in changes:
            changes["allowed_ips"] = _ips(changes["allowed_ips"])

        def change(record: StrategyRecord) -> StrategyRecord:
            return msgspec.structs.replace(record, **changes)

        return _view(await ctx.change(strategy_id, change), base_url, defaults)


def _secret_routes(router: APIRouter, ctx: _Context) -> None:
    """Rotate a strategy's webhook secret and its signing key."""
    clock, base_url, secret_grace_s = ctx.clock, ctx.base_url, ctx.secret_grace_s

    @router.post("/strategies/{strategy_id}/secret:rotate")
    async def rotate_secret(strategy_id: str, body: RotateIn | None = None) -> SecretRotated:
        """A new webhook secret; the old one stays valid for ``grace_s`` (no downtime).

        Only one previous secret is kept: rotating again ends the previous grace at once.
        """
        grace_s = secret_grace_s if body is None or body.grace_s is None else body.grace_s
        secret = new_secret()
        until_ns = clock.time_ns() + int(grace_s * 1e9)

        def change(record: StrategyRecord) -> StrategyRecord:
            return msgspec.structs.replace(
                record,
                secret_sha256=hash_secret(secret),
                previous_secret_sha256=record.secret_sha256,
                previous_secret_expires_ns=until_ns,
            )

        await ctx.change(strategy_id, change)
        return SecretRotated(
            strategy_id=strategy_id,
            secret=secret,
            webhook_url=f"{base_url}/webhooks/{strategy_id}/{secret}",
            previous_secret_valid_until_ns=until_ns,
        )

    @router.post("/strategies/{strategy_id}/signing-secret:rotate")
    async def rotate_signing_secret(
        strategy_id: str, body: RotateIn | None = None
    ) -> SigningSecretRotated:
        """Create (or replace) the Standard Webhooks signing key; the old key stays valid for
        ``grace_s``. The key is stored as is: an HMAC needs it (ADR-0013)."""
        grace_s = secret_grace_s if body is None or body.grace_s is None else body.grace_s
        key = new_signing_secret()
        until_ns = clock.time_ns() + int(grace_s * 1e9)

        def change(record: StrategyRecord) -> StrategyRecord:
            return msgspec.structs.replace(
                record,
                signing_secret=key,
                previous_signing_secret=record.signing_secret,
                previous_signing_secret_expires_ns=until_ns if record.signing_secret else 0,
            )

        record = await ctx.change(strategy_id, change)
        return SigningSecretRotated(
            strategy_id=strategy_id,
            signing_secret=key,
            previous_signing_secret_valid_until_ns=record.previous_signing_secret_expires_ns,
        )


def _subscription_routes(router: APIRouter, ctx: _Context) -> None:
    """Subscribe accounts to a strategy and list its subscriptions."""
    subscriptions = ctx.subscriptions

    @router.put("/strategies/{strategy_id}/subscriptions/{account_id}")
    async def put_subscription(
        strategy_id: str, account_id: int, body: SubscriptionIn
    ) -> SubscriptionView:
        """Subscribe one account (or change its sizing); 404 if the account is unknown."""
        await ctx.strategy(strategy_id)
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
        await ctx.strategy(strategy_id)
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
        await ctx.strategy(strategy_id)
        records = await subscriptions.for_strategy(strategy_id)
        return SubscriptionList(
            strategy_id=strategy_id, subscriptions=[_sub_view(r) for r in records]
        )


def _signal_log_routes(router: APIRouter, ctx: _Context) -> None:
    """The signal log: a strategy's recent signals and one signal."""
    signal_log = ctx.signal_log

    @router.get("/strategies/{strategy_id}/signals")
    async def list_signals(
        strategy_id: str, limit: int = Query(default=50, ge=1, le=1000)
    ) -> SignalList:
        """The strategy's recent signals, newest first, with each account's outcome and the
        time of each phase (received, stored, planned, sent, acknowledged) in ns and in ms
        after reception."""
        await ctx.strategy(strategy_id)
        entries = signal_log.signals(strategy_id, limit) if signal_log is not None else []
        return SignalList(strategy_id=strategy_id, signals=entries)

    @router.get("/signals/{signal_id}")
    async def get_signal(signal_id: str) -> dict[str, Any]:
        """One signal of the log (404 if unknown or evicted)."""
        entry = signal_log.signal(signal_id) if signal_log is not None else None
        if entry is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no signal {signal_id!r} in the log")
        return entry
