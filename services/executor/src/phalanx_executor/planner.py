"""The planner: one signal in, deterministic per-shard batches of order intents out.

:func:`plan` is pure: the same signal and subscriptions always give the same batches with the
same ids, so a redelivered signal republishes identical batches and JetStream drops them.
Sizing: ``fixed_quantity`` if set, else ``floor(signal quantity x multiplier)`` (signal quantity
defaults to 1), capped by ``max_quantity``; a zero result skips the account with a recorded
reason, never "1". A partial exit's quantity is sized the same way; an exit without a quantity,
or with ``sentiment: flat``, closes the whole position; ``percent_of_position`` exits carry the
percent, unscaled (the worker applies it to the live position). Order types, prices, trails,
time in force and cancels come from :mod:`order_spec` (ADR-0035). Whether an entry opens, adds,
reverses or is refused depends on the live position and is decided by the worker
(:mod:`decisions`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from phalanx_common import ids
from phalanx_common.contracts import ContractBook, UnknownTicker
from phalanx_common.events import IntentKind, OrderIntent, Signal, SignalReceived, VenueAction
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor import order_spec
from phalanx_executor.delayed_signals import due_ns
from phalanx_executor.sharding import shard_of

__all__ = ["Plan", "PlannedBatch", "Skip", "plan"]


@dataclass(frozen=True)
class Skip:
    """An account deliberately not traded, and why (``text``: a sentence for people)."""

    account_id: int
    reason: str
    text: str = ""


# Signals stored before they carried a deadline expire this long after receipt (and any delay).
LEGACY_MAX_AGE_S = 300


def deadline_ns(event: SignalReceived) -> int:
    """The last moment an order of this signal may be sent."""
    if event.not_after_ns:
        return event.not_after_ns
    return due_ns(event) + LEGACY_MAX_AGE_S * 1_000_000_000


@dataclass(frozen=True)
class PlannedBatch:
    """Intents for one shard, with a deterministic id."""

    batch_id: str
    shard: int
    intents: tuple[OrderIntent, ...]


@dataclass(frozen=True)
class Plan:
    """What a signal turns into.

    ``expired`` lists the accounts that would have been traded had the signal not been past its
    deadline when it was planned; ``not_after_ns`` is that deadline.
    """

    batches: list[PlannedBatch] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    rejected: str = ""
    expired: list[int] = field(default_factory=list)
    not_after_ns: int = 0

    @property
    def intent_count(self) -> int:
        """Number of intents across all batches."""
        return sum(len(b.intents) for b in self.batches)


def _quantity(signal: Signal, sub: SubscriptionRecord) -> int:
    if sub.fixed_quantity is not None:
        qty = sub.fixed_quantity
    else:
        base = signal.quantity if signal.quantity is not None else Decimal(1)
        qty = int((base * sub.multiplier).to_integral_value(rounding=ROUND_FLOOR))
    if sub.max_quantity is not None:
        qty = min(qty, sub.max_quantity)
    return max(qty, 0)


def plan(
    event: SignalReceived,
    subscriptions: Iterable[SubscriptionRecord],
    accounts: dict[int, AccountRecord],
    book: ContractBook,
    shards: int,
    batch_size: int,
    today: dt.date,
    now_ns: int = 0,
    signal_seq: int = 0,
) -> Plan:
    """Turn a signal into per-shard batches for the strategy's enabled subscriptions.

    A signal past its deadline at ``now_ns`` yields no batches: every account it would have
    traded is listed in ``expired``. A test signal (``test: true``) yields no batches either:
    every account it would have traded is skipped with ``test-signal`` and what it would do.
    ``signal_seq`` (the signal's SIGNALS stream sequence) orders each account's intents
    (ADR-0051).
    """
    signal = event.signal
    not_after = deadline_ns(event)
    expired = now_ns > not_after
    try:
        symbol, spec = book.resolve(event.contract or signal.ticker, today)
    except UnknownTicker as exc:
        return Plan(rejected=str(exc))

    flat = signal.sentiment == "flat"
    kind: IntentKind
    if signal.action == "cancel":
        kind = "cancel"
    elif signal.action == "exit" or flat:
        kind = "exit"
    elif signal.action == "add":
        kind = "add"
    else:
        kind = "entry"
    action: VenueAction = "Buy" if signal.action == "buy" else "Sell"
    try:
        fields = order_spec.order_fields(signal, kind, action, spec)  # ADR-0035
    except order_spec.OrderSpecError as exc:
        return Plan(rejected=str(exc))
    exit_pct = order_spec.exit_percent(signal) if kind == "exit" and not flat else None

    by_shard: dict[int, list[OrderIntent]] = defaultdict(list)
    skipped: list[Skip] = []
    expired_accounts: list[int] = []
    for sub in sorted(subscriptions, key=lambda s: s.account_id):
        if sub.strategy_id != event.strategy_id:
            continue
        if not sub.enabled:
            skipped.append(Skip(sub.account_id, "subscription-disabled"))
            continue
        account = accounts.get(sub.account_id)
        if account is None or not account.active:
            skipped.append(Skip(sub.account_id, "account-not-linked"))
            continue
        qty = _quantity(signal, sub) if kind in ("entry", "add") else 0
        exit_qty: int | None = None
        if kind == "exit" and not flat and signal.quantity is not None and exit_pct is None:
            exit_qty = _quantity(signal, sub)
        if (kind in ("entry", "add") and qty == 0) or exit_qty == 0:
            skipped.append(Skip(sub.account_id, "quantity-rounds-to-zero"))
            continue
        if sub.max_quantity is None and 0 < event.max_quantity < max(qty, exit_qty or 0):
            skipped.append(
                Skip(
                    sub.account_id,
                    "quantity-above-maximum",
                    f"sized to {max(qty, exit_qty or 0)} contracts, more than the strategy's "
                    f"maximum of {event.max_quantity} (set the subscription's max_quantity to "
                    "cap it instead)",
                )
            )
            continue
        if expired:
            expired_accounts.append(sub.account_id)
            continue
        if signal.test:
            skipped.append(Skip(sub.account_id, "test-signal", _would(kind, action, qty, symbol)))
            continue
        by_shard[shard_of(account.login_id, shards)].append(
            OrderIntent(
                intent_id=ids.intent_id(event.signal_id, sub.account_id),
                signal_id=event.signal_id,
                strategy_id=event.strategy_id,
                account_id=sub.account_id,
                account_spec=account.account_spec,
                login_id=account.login_id,
                kind=kind,
                action=action,
                symbol=symbol,
                quantity=qty,
                **fields,
                sentiment=signal.sentiment,
                exit_quantity=exit_qty,
                exit_percent=exit_pct,
                allow_add=sub.allow_add,
                allow_reversal=sub.allow_reversal,
                not_after_ns=not_after,
                signal_seq=signal_seq,
            )
        )

    batches: list[PlannedBatch] = []
    for shard in sorted(by_shard):
        intents = by_shard[shard]
        for index, start in enumerate(range(0, len(intents), batch_size)):
            batches.append(
                PlannedBatch(
                    batch_id=ids.batch_id(event.signal_id, shard, index),
                    shard=shard,
                    intents=tuple(intents[start : start + batch_size]),
                )
            )
    return Plan(batches=batches, skipped=skipped, expired=expired_accounts, not_after_ns=not_after)


def _would(kind: IntentKind, action: VenueAction, qty: int, symbol: str) -> str:
    """What a test signal would have done on one account."""
    if kind == "exit":
        return f"test signal: would exit {symbol}; nothing was sent"
    if kind == "cancel":
        return f"test signal: would cancel working orders in {symbol}; nothing was sent"
    return f"test signal: would {action.lower()} {qty} {symbol}; nothing was sent"
