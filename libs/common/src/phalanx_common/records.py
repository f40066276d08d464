"""Records kept in KV buckets: the projections services share (not events)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

import msgspec

__all__ = [
    "AccountGuardRecord",
    "AccountQueueRecord",
    "AccountRecord",
    "IntentLeaseRecord",
    "IntentRecord",
    "IntentState",
    "LoginRecord",
    "LoginStatus",
    "ReplicaHeartbeat",
    "StrategyRecord",
    "SubscriptionRecord",
    "TokenRecord",
    "TradingStateRecord",
]


class StrategyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy: where its webhook points and how its secret is checked."""

    strategy_id: str
    name: str
    secret_sha256: str
    allowed_tickers: tuple[str, ...] = ()
    created_ns: int = 0
    # Added by ingest issue #6 (all optional): rotation grace, sender restrictions, signing.
    previous_secret_sha256: str = ""
    previous_secret_expires_ns: int = 0
    tradingview_only: bool = False
    allowed_ips: tuple[str, ...] = ()
    signing_secret: str = ""
    previous_signing_secret: str = ""
    previous_signing_secret_expires_ns: int = 0
    require_signature: bool = False
    max_signal_age_s: float = 0.0
    rate_limit_per_min: int = 0
    # Added by the signal-contract issue (0 = the service default, see ADR-0045).
    max_quantity: int = 0  # largest quantity a signal may ask for
    repeat_window_s: float = 0.0  # an id-less body sent again within this is a duplicate
    max_entry_age_s: float = 0.0  # entries older than this (from receipt) expire
    max_exit_age_s: float = 0.0  # exits and cancels older than this (from receipt) expire


class SubscriptionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One account following one strategy, with its sizing."""

    strategy_id: str
    account_id: int
    multiplier: Decimal = Decimal(1)
    fixed_quantity: int | None = None
    max_quantity: int | None = None
    enabled: bool = True
    allow_add: bool = False
    allow_reversal: bool = True


class AccountRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A broker account and the login (user) that reaches it."""

    account_id: int
    account_spec: str
    login_id: str
    user_id: int
    active: bool = True


class LoginStatus(StrEnum):
    """Where a login stands; auth moves it only along ``phalanx_auth.login_status.TRANSITIONS``.

    Stored as its value (``"active"``, ...), exactly as the strings it replaced.
    """

    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"
    DISCONNECTED = "disconnected"


class LoginRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A broker login (a Tradovate user) and how to reach the venue for it."""

    login_id: str
    username: str
    user_id: int = 0
    status: LoginStatus = LoginStatus.ACTIVE
    method: str = "api"  # "oauth" | "api": how the login was connected
    reason: str = ""  # why it needs re-authorization or was disconnected
    connected_ns: int = 0
    has_credentials: bool = False  # sealed API-access credentials are stored (opt-in)


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The current access token of a login, written only by auth."""

    login_id: str
    user_id: int
    access_token: str
    expiration_time: str

    def __repr__(self) -> str:
        return f"TokenRecord(login_id={self.login_id!r}, expiration_time={self.expiration_time!r})"

    def expires_ns(self) -> int:
        """``expiration_time`` in ns since the epoch; 0 (long expired) when it cannot be read.

        A token whose expiry is unknown is treated as expired: nothing is sent on a guess.
        """
        try:
            parsed = datetime.fromisoformat(self.expiration_time.replace("Z", "+00:00"))
        except ValueError:
            return 0
        if parsed.tzinfo is None:
            return 0
        return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


IntentState = Literal["claimed", "accepted", "rejected", "unknown", "expired"]


class IntentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The at-most-once claim on an order intent, and where it stands."""

    intent_id: str
    state: IntentState
    owner: str
    order_id: int | None = None
    reason: str = ""
    attempt: int = 1
    claimed_ns: int = 0


class IntentLeaseRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Who works on a claimed intent right now, and until when (renewed while working; ADR-0050)."""

    intent_id: str
    owner: str
    expires_ns: int


class AccountQueueRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An account's unresolved intents, oldest signal first (ADR-0051).

    Each entry is ``(signal stream sequence, intent id)``. ``not_after`` gives entries their
    intent's deadline, ``(intent id, ns since the epoch)`` (ADR-0185); an entry without one
    (written before it existed) is given a conservative one at the queue's next change.
    """

    account_id: int
    pending: tuple[tuple[int, str], ...] = ()
    not_after: tuple[tuple[str, int], ...] = ()


class TradingStateRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Trading state of one scope (``global``, ``strategy.<id>``, ``account.<id>``)."""

    scope: str
    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: str = ""
    updated_ns: int = 0
    by: str = ""  # who set it (the console's signed-in user; empty from the bare API)


class AccountGuardRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Per-account limits checked before any entry is sent."""

    account_id: int
    max_contracts: int | None = None
    daily_loss_limit: Decimal | None = None


class ReplicaHeartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """An executor replica is alive until ``expires_ns`` (renewed every few seconds)."""

    ordinal: int
    owner: str
    expires_ns: int
