"""Planning, pure: one signal in, deterministic per-shard batches of order intents out (the
consumer that publishes them is :mod:`planner`).

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from phalanx_common import ids
from phalanx_common.contracts import ContractBook, UnknownTicker
from phalanx_common.events import IntentKind, OrderIntent, Signal, SignalReceived, VenueAction
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_common.signal_ages import LONGEST_DEADLINE_S
from phalanx_executor import order_spec
from phalanx_executor.delayed_signals import due_ns
from phalanx_executor.sharding import shard_of

__all__ = ["Plan", "PlanStream", "PlannedBatch", "Skip", "plan"]


@dataclass(frozen=True)
class Skip:
    """An account deliberately not traded, and why (``text``: a sentence for people)."""

    account_id: int
    reason: str
    text: str = ""


# Signals stored before they carried a deadline expire this long after receipt (and any delay).
LEGACY_MAX_AGE_S = 300


def deadline_ns(event: SignalReceived) -> int:
    """The last moment an order of this signal may be sent: never later than
    :data:`LONGEST_DEADLINE_S` after its receipt, whatever the event says (the intent claims'
    time to live is chosen from that bound; ADR-0185)."""
    if event.not_after_ns:
        return min(event.not_after_ns, event.ts_event + LONGEST_DEADLINE_S * 1_000_000_000)
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


@dataclass(frozen=True)
class _Terms:
    """What every account's intent of one signal shares."""

    kind: IntentKind
    action: VenueAction
    symbol: str
    fields: order_spec.OrderFields
    exit_pct: Decimal | None
    flat: bool


def _kind_of(signal: Signal) -> IntentKind:
    if signal.action == "cancel":
        return "cancel"
    if signal.action == "exit" or signal.sentiment == "flat":
        return "exit"
    if signal.action == "add":
        return "add"
    return "entry"


def _terms(event: SignalReceived, book: ContractBook, today: dt.date) -> _Terms | str:
    """The signal's shared terms, or why it cannot be planned."""
    signal = event.signal
    try:
        symbol, spec = book.resolve(event.contract or signal.ticker, today)
    except UnknownTicker as exc:
        return str(exc)
    kind = _kind_of(signal)
    action: VenueAction = "Buy" if signal.action == "buy" else "Sell"
    try:
        fields = order_spec.order_fields(signal, kind, action, spec)  # ADR-0035
    except order_spec.OrderSpecError as exc:
        return str(exc)
    flat = signal.sentiment == "flat"
    exit_pct = order_spec.exit_percent(signal) if kind == "exit" and not flat else None
    return _Terms(kind, action, symbol, fields, exit_pct, flat)


def _sizes(
    event: SignalReceived, sub: SubscriptionRecord, terms: _Terms
) -> tuple[int, int | None] | Skip:
    """(entry quantity, exit quantity) for one account, or why it is skipped."""
    signal = event.signal
    kind = terms.kind
    qty = _quantity(signal, sub) if kind in ("entry", "add") else 0
    exit_qty: int | None = None
    if kind == "exit" and not terms.flat and signal.quantity is not None and terms.exit_pct is None:
        exit_qty = _quantity(signal, sub)
    if (kind in ("entry", "add") and qty == 0) or exit_qty == 0:
        return Skip(sub.account_id, "quantity-rounds-to-zero")
    sized = max(qty, exit_qty or 0)
    if sub.max_quantity is None and 0 < event.max_quantity < sized:
        return Skip(
            sub.account_id,
            "quantity-above-maximum",
            f"sized to {sized} contracts, more than the strategy's "
            f"maximum of {event.max_quantity} (set the subscription's max_quantity to "
            "cap it instead)",
        )
    return qty, exit_qty


class PlanStream:
    """A signal's plan whose batches are handed out as they fill, so the first can be
    published while the rest is still being planned (ADR-0165).

    ``rejected`` is known at once; :meth:`batches` yields every batch once, a shard's batch as
    soon as it holds ``batch_size`` intents and the partly filled ones at the end; ``skipped``,
    ``expired`` and :attr:`intent_count` are complete once it is exhausted. The batches and
    their ids are those :func:`plan` returns (only the order in which they come differs).
    """

    def __init__(
        self,
        event: SignalReceived,
        subscriptions: Iterable[SubscriptionRecord],
        accounts: dict[int, AccountRecord],
        book: ContractBook,
        shards: int,
        batch_size: int,
        today: dt.date,
        now_ns: int = 0,
        signal_seq: int = 0,
    ) -> None:
        self._event = event
        self._subscriptions = subscriptions
        self._accounts = accounts
        self._shards = shards
        self._batch_size = batch_size
        self._signal_seq = signal_seq
        self.not_after_ns = deadline_ns(event)
        self._expired = now_ns > self.not_after_ns
        terms = _terms(event, book, today)
        self._terms = terms if isinstance(terms, _Terms) else None
        self.rejected = terms if isinstance(terms, str) else ""
        self.skipped: list[Skip] = []
        self.expired: list[int] = []
        self.intent_count = 0

    def batches(self) -> Iterator[PlannedBatch]:
        """The batches, each as soon as it is complete."""
        if self._terms is None:
            return
        pending: dict[int, list[OrderIntent]] = defaultdict(list)
        cut: dict[int, int] = defaultdict(int)
        for sub in sorted(self._subscriptions, key=lambda s: s.account_id):
            intent = self._intent(sub, self._terms)
            if intent is None:
                continue
            self.intent_count += 1
            shard = shard_of(intent.login_id, self._shards)
            pending[shard].append(intent)
            if len(pending[shard]) == self._batch_size:
                yield self._batch(shard, cut, pending.pop(shard))
        for shard in sorted(pending):
            yield self._batch(shard, cut, pending[shard])

    def _batch(self, shard: int, cut: dict[int, int], intents: list[OrderIntent]) -> PlannedBatch:
        index = cut[shard]
        cut[shard] = index + 1
        return PlannedBatch(
            ids.batch_id(self._event.signal_id, shard, index), shard, tuple(intents)
        )

    def _intent(self, sub: SubscriptionRecord, terms: _Terms) -> OrderIntent | None:
        """One account's intent; ``None`` when it is skipped or expired (recorded) or not
        this strategy's."""
        event = self._event
        if sub.strategy_id != event.strategy_id:
            return None
        account = self._accounts.get(sub.account_id)
        if not sub.enabled:
            self.skipped.append(Skip(sub.account_id, "subscription-disabled"))
            return None
        if account is None or not account.active:
            self.skipped.append(Skip(sub.account_id, "account-not-linked"))
            return None
        sizes = _sizes(event, sub, terms)
        if isinstance(sizes, Skip):
            self.skipped.append(sizes)
            return None
        if self._expired:
            self.expired.append(sub.account_id)
            return None
        qty, exit_qty = sizes
        if event.signal.test:
            self.skipped.append(
                Skip(
                    sub.account_id,
                    "test-signal",
                    _would(terms.kind, terms.action, qty, terms.symbol),
                )
            )
            return None
        f = terms.fields
        return OrderIntent(
            intent_id=ids.intent_id(event.signal_id, sub.account_id),
            signal_id=event.signal_id,
            strategy_id=event.strategy_id,
            account_id=sub.account_id,
            account_spec=account.account_spec,
            login_id=account.login_id,
            kind=terms.kind,
            action=terms.action,
            symbol=terms.symbol,
            quantity=qty,
            order_type=f["order_type"],
            limit_price=f["limit_price"],
            stop_price=f["stop_price"],
            peg_difference=f["peg_difference"],
            take_profit=f["take_profit"],
            stop_loss=f["stop_loss"],
            stop_loss_type=f["stop_loss_type"],
            stop_loss_limit=f["stop_loss_limit"],
            stop_loss_peg=f["stop_loss_peg"],
            time_in_force=f["time_in_force"],
            bracket_time_in_force=f["bracket_time_in_force"],
            cancel=f["cancel"],
            cancel_order_type=f["cancel_order_type"],
            sentiment=event.signal.sentiment,
            exit_quantity=exit_qty,
            exit_percent=terms.exit_pct,
            allow_add=sub.allow_add,
            allow_reversal=sub.allow_reversal,
            not_after_ns=self.not_after_ns,
            signal_seq=self._signal_seq,
        )


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
    (ADR-0051). The batches come by shard, then in order within the shard.
    """
    stream = PlanStream(
        event, subscriptions, accounts, book, shards, batch_size, today, now_ns, signal_seq
    )
    if stream.rejected:
        return Plan(rejected=stream.rejected)
    by_shard: dict[int, list[PlannedBatch]] = defaultdict(list)
    for batch in stream.batches():
        by_shard[batch.shard].append(batch)
    batches = [batch for shard in sorted(by_shard) for batch in by_shard[shard]]
    return Plan(
        batches=batches,
        skipped=stream.skipped,
        expired=stream.expired,
        not_after_ns=stream.not_after_ns,
    )


def _would(kind: IntentKind, action: VenueAction, qty: int, symbol: str) -> str:
    """What a test signal would have done on one account."""
    if kind == "exit":
        return f"test signal: would exit {symbol}; nothing was sent"
    if kind == "cancel":
        return f"test signal: would cancel working orders in {symbol}; nothing was sent"
    return f"test signal: would {action.lower()} {qty} {symbol}; nothing was sent"
