"""The admin API's request and response bodies (pydantic models, shown in the OpenAPI page)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from phalanx_common.signal_ages import MAX_SIGNAL_AGE_S

__all__ = [
    "BulkSubscriptionIn",
    "BulkSubscriptionOut",
    "RotateIn",
    "SecretRotated",
    "SignalList",
    "SigningSecretRotated",
    "StrategyCreate",
    "StrategyCreated",
    "StrategyList",
    "StrategyPatch",
    "StrategyView",
    "SubscriptionIn",
    "SubscriptionList",
    "SubscriptionView",
]

_MAX_BULK = 10_000


class StrategyCreate(BaseModel):
    """Body of ``POST /admin/strategies``."""

    name: str = Field(min_length=1, max_length=200)
    allowed_tickers: list[str] = Field(
        default_factory=list, max_length=1000, description="Empty: any ticker is allowed."
    )
    tradingview_only: bool = Field(
        default=False, description="Accept only TradingView's published sender addresses."
    )
    allowed_ips: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Sender addresses or CIDRs (with tradingview_only: in addition to them).",
    )
    max_signal_age_s: float = Field(
        default=0.0, ge=0, le=86400, description="Refuse signals whose time is older (0: off)."
    )
    rate_limit_per_min: int = Field(
        default=0, ge=0, le=1_000_000, description="Webhooks per minute (0: service default)."
    )
    require_signature: bool = Field(
        default=False, description="Accept only Standard Webhooks-signed requests."
    )
    max_quantity: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="Largest quantity a signal may ask for (0: PHALANX_MAX_SIGNAL_QUANTITY).",
    )
    repeat_window_s: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="An id-less body sent again within this is a duplicate; later it trades "
        "again (0: PHALANX_REPEAT_WINDOW_S).",
    )
    max_entry_age_s: float = Field(
        default=0,
        ge=0,
        le=MAX_SIGNAL_AGE_S,
        description="Entries not sent within this of receipt (after delay) expire "
        "(0: PHALANX_MAX_ENTRY_AGE_S).",
    )
    max_exit_age_s: float = Field(
        default=0,
        ge=0,
        le=MAX_SIGNAL_AGE_S,
        description="Exits and cancels likewise (0: PHALANX_MAX_EXIT_AGE_S).",
    )


class StrategyPatch(BaseModel):
    """Body of ``PATCH /admin/strategies/{strategy_id}``: only the fields sent change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    allowed_tickers: list[str] | None = Field(default=None, max_length=1000)
    tradingview_only: bool | None = None
    allowed_ips: list[str] | None = Field(default=None, max_length=1000)
    max_signal_age_s: float | None = Field(default=None, ge=0, le=86400)
    rate_limit_per_min: int | None = Field(default=None, ge=0, le=1_000_000)
    require_signature: bool | None = None
    max_quantity: int | None = Field(default=None, ge=0, le=1_000_000)
    repeat_window_s: float | None = Field(default=None, ge=0, le=3600)
    max_entry_age_s: float | None = Field(default=None, ge=0, le=MAX_SIGNAL_AGE_S)
    max_exit_age_s: float | None = Field(default=None, ge=0, le=MAX_SIGNAL_AGE_S)


class RotateIn(BaseModel):
    """Body of the rotation routes: how long the old secret stays valid."""

    grace_s: float | None = Field(
        default=None, ge=0, le=30 * 86400, description="Default: PHALANX_SECRET_GRACE_S."
    )


class SecretRotated(BaseModel):
    """A new webhook secret and URL (shown only this once); the old one works until the time."""

    strategy_id: str
    secret: str
    webhook_url: str
    previous_secret_valid_until_ns: int


class SigningSecretRotated(BaseModel):
    """A new Standard Webhooks signing key (``whsec_...``, shown only this once)."""

    strategy_id: str
    signing_secret: str
    previous_signing_secret_valid_until_ns: int


class StrategyCreated(BaseModel):
    """A new strategy, with its secret and webhook URL (shown only this once)."""

    strategy_id: str
    name: str
    secret: str
    webhook_url: str
    allowed_tickers: list[str]


class StrategyView(BaseModel):
    """A strategy as the admin API shows it (never its secret).

    ``webhook_url`` holds ``{secret}`` where the secret goes: secrets are stored hashed, so the
    full URL is shown only when the strategy is created or its secret rotated.
    """

    strategy_id: str
    name: str
    allowed_tickers: list[str]
    created_ns: int
    webhook_url: str = ""
    tradingview_only: bool = False
    allowed_ips: list[str] = Field(default_factory=list)
    max_signal_age_s: float = 0.0
    rate_limit_per_min: int = 0
    require_signature: bool = False
    has_signing_secret: bool = False
    previous_secret_valid_until_ns: int = 0
    max_quantity: int = Field(default=0, description="In force (the strategy's or the default).")
    repeat_window_s: float = 0.0
    max_entry_age_s: float = 0.0
    max_exit_age_s: float = 0.0


class StrategyList(BaseModel):
    """Body of ``GET /admin/strategies``."""

    strategies: list[StrategyView]


class SubscriptionIn(BaseModel):
    """Sizing of one account on one strategy."""

    multiplier: Decimal = Field(default=Decimal(1), gt=0)
    fixed_quantity: int | None = Field(default=None, ge=1)
    max_quantity: int | None = Field(default=None, ge=1)
    enabled: bool = True
    allow_add: bool = Field(
        default=False, description="A same-side entry adds to the position (else refused)."
    )
    allow_reversal: bool = Field(
        default=True, description="An opposite-side entry reverses the position (else refused)."
    )


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
    allow_add: bool = False
    allow_reversal: bool = True


class SubscriptionList(BaseModel):
    """Body of ``GET .../subscriptions``."""

    strategy_id: str
    subscriptions: list[SubscriptionView]


class BulkSubscriptionOut(BaseModel):
    """Answer of a bulk subscription: how many accounts are now subscribed."""

    strategy_id: str
    subscribed: int
    account_ids: list[int]


class SignalList(BaseModel):
    """Body of ``GET .../signals``: see :meth:`phalanx_ingest.signallog.SignalLog.signals`."""

    strategy_id: str
    signals: list[dict[str, Any]]
