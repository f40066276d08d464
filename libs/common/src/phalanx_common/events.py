"""The event catalog: every message that crosses the bus.

Each event is a frozen, tagged msgspec struct carrying ``event_id``, ``ts_event`` (when the fact
happened) and ``ts_init`` (when this struct was made), both in nanoseconds since the epoch.
Events only gain fields, each with a default; decoders ignore fields they do not know.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

__all__ = [
    "MAX_DELAY_S",
    "AccountLinked",
    "AccountOutcome",
    "AccountUnlinked",
    "AnyEvent",
    "Event",
    "ExecBatch",
    "ExpiryStage",
    "FillFees",
    "FillReceived",
    "FlattenCompleted",
    "IntentDeliveryState",
    "IntentEvent",
    "IntentExpired",
    "IntentSkipped",
    "KillSwitchEngaged",
    "MessageTerminated",
    "OrderAccepted",
    "OrderIntent",
    "OrderOutcomeUnknown",
    "OrderRejected",
    "PositionDrift",
    "PositionDriftRow",
    "PositionReported",
    "QuantityType",
    "ReauthRequired",
    "Signal",
    "SignalOrderType",
    "SignalPlanned",
    "SignalReceived",
    "SignalTimeInForce",
    "StopLoss",
    "StopLossType",
    "TakeProfit",
    "TokenRenewed",
    "TradingStateChanged",
    "VenueOrderType",
    "VenueTimeInForce",
]

SignalAction = Literal["buy", "sell", "exit", "cancel", "add"]
Sentiment = Literal["bullish", "bearish", "flat"]
VenueAction = Literal["Buy", "Sell"]
IntentKind = Literal["entry", "exit", "cancel", "add"]
TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]
VenueOrderType = Literal["Market", "Limit", "Stop", "StopLimit", "TrailingStop"]
VenueTimeInForce = Literal["Day", "GTC", "IOC", "FOK"]
# The webhook's enumerations as a Signal carries them (ingest's parser checks against these).
SignalOrderType = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
QuantityType = Literal["fixed_quantity", "percent_of_position"]
SignalTimeInForce = Literal["day", "gtc", "opg", "cls", "ioc", "fok"]
StopLossType = Literal["stop", "stop_limit", "trailing_stop"]
# Outcome states (ADR-0177). What one account's part of a signal ended in, as the signal log
# and the console show it: ``placed`` (OrderAccepted), ``rejected`` (OrderRejected),
# ``skipped`` (IntentSkipped), ``expired`` (IntentExpired), ``unknown`` (OrderOutcomeUnknown,
# while reconciliation looks the order up).
AccountOutcome = Literal["placed", "rejected", "skipped", "expired", "unknown"]
# Where an intent expired: when it was planned, or while it waited to be sent.
ExpiryStage = Literal["planning", "before-send"]
# One intent in one delivery of its batch, in the executor: terminal (accepted, rejected,
# duplicate) or coming back with the batch (not-ready, pending, unresolved).
IntentDeliveryState = Literal[
    "accepted", "rejected", "duplicate", "not-ready", "pending", "unresolved"
]


MAX_DELAY_S = 3600  # the longest `delay` a signal may ask for, in seconds (TradersPost's bound)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Base of every event: identity and the two timestamps (ns since the epoch)."""

    event_id: str
    ts_event: int
    ts_init: int


class TakeProfit(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Take-profit leg: exactly one of an absolute limit price, a percent or a price amount."""

    limit_price: Decimal | None = None
    percent: Decimal | None = None
    amount: Decimal | None = None


class StopLoss(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Stop-loss leg: a type and exactly one of an absolute stop price, a percent or an amount."""

    type: StopLossType = "stop"
    stop_price: Decimal | None = None
    percent: Decimal | None = None
    amount: Decimal | None = None
    limit_price: Decimal | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None


class Signal(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A validated trading signal, normalised from a TradersPost-style webhook body."""

    ticker: str
    action: SignalAction
    sentiment: Sentiment | None = None
    quantity: Decimal | None = None
    order_type: SignalOrderType = "market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    signal_price: Decimal | None = None
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None
    time: str | None = None
    interval: str | None = None
    extras: dict[str, Any] | None = None
    test: bool = False
    # Added by ingest issue #6 (all optional; planners that do not read them are unaffected).
    id: str | None = None
    quantity_type: QuantityType | None = None
    time_in_force: SignalTimeInForce | None = None
    trail_amount: Decimal | None = None
    trail_percent: Decimal | None = None
    cancel: bool | None = None
    cancel_order_type: str | None = None
    delay_s: Decimal | None = None
    ignore_trading_windows: bool | None = None
    expires_at: str | None = None

    def reference_price(self) -> Decimal | None:
        """The price relative brackets and trails are measured from (TradersPost's order):
        ``signalPrice``/``price``, else ``limitPrice``, else ``stopPrice``; None when none was
        sent. Ingest refuses a relative price without one; the executor computes from it."""
        for price in (self.signal_price, self.limit_price, self.stop_price):
            if price is not None:
                return price
        return None


class SignalReceived(Event, frozen=True, kw_only=True, tag="SignalReceived"):
    """A webhook signal was accepted and made durable.

    ``ts_event`` is when ingest received it. ``not_after_ns`` is the last moment any order of it
    may be sent (receipt + delay + the strategy's maximum age for its kind, or ``expiresAt`` if
    sooner; 0 on events written before it existed). ``max_quantity`` is the strategy's maximum
    at receipt (0: none recorded). ``contract`` pins a continuous ticker (``MNQ1!``) to the
    contract it named when received, so a signal planned after a roll (late, or delayed) still
    trades what was asked. ``replay_of`` names the signal an operator deliberately re-ran as this
    one (ADR-0090; ``replay_by`` and ``replay_reason`` as the request gave them).
    """

    signal_id: str
    strategy_id: str
    signal: Signal
    not_after_ns: int = 0
    max_quantity: int = 0
    contract: str = ""  # Tradovate's dated symbol the ticker resolved to at receipt ("": none)
    replay_of: str = ""  # the original signal's id when this is a deliberate re-run
    replay_by: str = ""
    replay_reason: str = ""
    # The trace of the webhook that brought it (32 hex digits; "" on events written before it
    # existed): its spans, from ingest to the last fill, share this id (ADR-0070).
    trace_id: str = ""

    def due_ns(self) -> int:
        """When the signal is due: its reception plus its ``delay`` (ns since the epoch).

        Raises:
            ValueError: if the delay is not a number of seconds from 0 to :data:`MAX_DELAY_S`
                (ingest refuses such a signal at the door).
        """
        delay = self.signal.delay_s
        if delay is None:
            return self.ts_event
        try:
            if not Decimal(0) <= delay <= MAX_DELAY_S:
                raise ValueError(f"delay {delay} s is outside 0..{MAX_DELAY_S}")
            return self.ts_event + int(delay * 1_000_000_000)
        except (InvalidOperation, ArithmeticError) as exc:
            raise ValueError(f"delay {delay!r} is not a number of seconds") from exc


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one account must do for one signal. ``intent_id`` is also the broker ``clOrdId``."""

    intent_id: str
    signal_id: str
    strategy_id: str
    account_id: int
    account_spec: str
    login_id: str
    kind: IntentKind
    action: VenueAction
    symbol: str
    quantity: int
    order_type: VenueOrderType = "Market"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    sentiment: Sentiment | None = None
    exit_quantity: int | None = None  # None: the whole position
    allow_add: bool = False
    allow_reversal: bool = True
    traceparent: str = ""
    not_after_ns: int = 0  # no venue request of this intent is sent after this (0: no limit)
    # Order types, time in force and cancels (ADR-0035); every price is on tick.
    peg_difference: Decimal | None = None  # TrailingStop entry: the trail, in price points
    time_in_force: VenueTimeInForce | None = None  # None: the venue's default
    bracket_time_in_force: VenueTimeInForce | None = None
    stop_loss_type: Literal["Stop", "StopLimit", "TrailingStop"] = "Stop"
    stop_loss_limit: Decimal | None = None  # StopLimit stop-loss leg: its limit price
    stop_loss_peg: Decimal | None = None  # TrailingStop stop-loss leg: its trail
    exit_percent: Decimal | None = None  # exit this percent of the live position
    cancel: bool | None = None  # the signal's ``cancel``: None = TradersPost's default
    cancel_order_type: VenueOrderType | None = None  # cancel only working orders of this type
    # SIGNALS stream sequence of the signal: an account's intents run in this order (ADR-0051).
    signal_seq: int = 0


class ExecBatch(Event, frozen=True, kw_only=True, tag="ExecBatch"):
    """A batch of intents for one shard; its id is deterministic so replanning deduplicates."""

    batch_id: str
    signal_id: str
    strategy_id: str
    shard: int
    intents: tuple[OrderIntent, ...]
    traceparent: str = ""


class SignalPlanned(Event, frozen=True, kw_only=True, tag="SignalPlanned"):
    """The planner turned a signal into batches (and maybe skipped some accounts)."""

    signal_id: str
    strategy_id: str
    intents: int
    batches: int
    skipped: int = 0
    rejected: str = ""
    expired: int = 0  # accounts not traded because the signal was past its deadline
    received_ns: int = 0  # when ingest received the webhook (SignalReceived.ts_event; 0: unknown)


class IntentSkipped(Event, frozen=True, kw_only=True, tag="IntentSkipped"):
    """An account was deliberately not traded for a signal, with the reason."""

    signal_id: str
    strategy_id: str
    account_id: int
    reason: str
    text: str = ""  # a sentence for people (e.g. what a test signal would have done)


class IntentExpired(Event, frozen=True, kw_only=True, tag="IntentExpired"):
    """An account's part of a signal was not traded because the signal was too old.

    ``stage`` is ``planning`` (the signal was already past ``not_after_ns`` when planned) or
    ``before-send`` (it aged out while waiting, e.g. for a permit or a connection).
    """

    intent_id: str
    signal_id: str
    strategy_id: str
    account_id: int
    not_after_ns: int
    stage: ExpiryStage = "planning"
    text: str = ""


class IntentEvent(Event, frozen=True, kw_only=True, tag="IntentEvent"):
    """Base of the outcome events of one intent (one account's part of one signal)."""

    intent_id: str
    signal_id: str
    strategy_id: str
    account_id: int
    login_id: str


class OrderAccepted(IntentEvent, frozen=True, kw_only=True, tag="OrderAccepted"):
    """The venue accepted an order (entry id plus bracket leg ids when present)."""

    symbol: str
    order_id: int
    oso1_id: int | None = None
    oso2_id: int | None = None
    sent_ns: int = 0
    operation: str = "placeoso"
    recovered: bool = False  # found at the venue by clOrdId after an unknown outcome
    note: str = ""  # why less than the signal asked was done (e.g. a reversal's entry refused)


class OrderRejected(IntentEvent, frozen=True, kw_only=True, tag="OrderRejected"):
    """The venue, or a check before it, refused an order; ``reason`` is machine-readable."""

    reason: str
    text: str = ""


class OrderOutcomeUnknown(IntentEvent, frozen=True, kw_only=True, tag="OrderOutcomeUnknown"):
    """An order may or may not be at the venue (timeout, dropped socket, crashed claimant).

    Never resent blindly: reconciliation looks the order up by ``clOrdId`` (= ``intent_id``).
    """

    reason: str


class FillReceived(Event, frozen=True, kw_only=True, tag="FillReceived"):
    """A fill reported by the venue."""

    fill_id: int
    order_id: int
    account_id: int
    contract_id: int
    symbol: str
    action: VenueAction
    qty: int
    price: Decimal
    venue_timestamp: str = ""
    # Who reported it: "" = the executor's live view of the venue; "reconciliation" = fetched
    # by the ledger from the venue because the FILLS stream lacked it (a manual trade, ADR-0125).
    reported_by: str = ""


class FillFees(Event, frozen=True, kw_only=True, tag="FillFees"):
    """Commissions and fees the venue reports for one fill (its ``fillFee``), in ``currency``.

    Fetched by the ledger's reconciliation (ADR-0127); ``total`` is the sum of the amounts
    in ``currency``; ``other_currency`` counts amounts in another currency (left out of it).
    """

    fill_id: int = 0
    account_id: int = 0
    currency: str = ""
    total: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    exchange_fee: Decimal = Decimal(0)
    clearing_fee: Decimal = Decimal(0)
    nfa_fee: Decimal = Decimal(0)
    brokerage_fee: Decimal = Decimal(0)
    ip_fee: Decimal = Decimal(0)
    order_routing_fee: Decimal = Decimal(0)
    other_currency: int = 0


class PositionReported(Event, frozen=True, kw_only=True, tag="PositionReported"):
    """The venue's view of a position (for reconciliation)."""

    account_id: int
    contract_id: int
    symbol: str
    net_pos: int
    net_price: Decimal | None = None


class PositionDriftRow(msgspec.Struct, frozen=True, kw_only=True):
    """One contract whose position the ledger and the broker disagreed on (both sides)."""

    contract_id: int = 0
    symbol: str = ""
    ledger_net_pos: int = 0  # the ledger's book before the reconciliation
    broker_net_pos: int = 0  # the broker's ``position/deps`` answer
    fetched_net_pos: int = 0  # signed contracts of the fills fetched because the ledger lacked them
    ledger_avg_price: Decimal | None = None
    broker_net_price: Decimal | None = None


class PositionDrift(Event, frozen=True, kw_only=True, tag="PositionDrift"):
    """The ledger's positions of an account disagreed with the broker's (ADR-0125).

    ``explained``: the fills fetched from the broker (now recorded, attributed ``outside``
    unless an accepted order names them) account for every difference; otherwise something
    changed the account that no fill explains.
    """

    account_id: int = 0
    login_id: str = ""
    contracts: tuple[PositionDriftRow, ...] = ()
    fetched_fills: int = 0
    explained: bool = False
    reduced: bool = False  # the ledger switched the account to REDUCING (setting)


class AccountLinked(Event, frozen=True, kw_only=True, tag="AccountLinked"):
    """A broker account became reachable through a login."""

    account_id: int
    account_spec: str
    login_id: str
    user_id: int


class AccountUnlinked(Event, frozen=True, kw_only=True, tag="AccountUnlinked"):
    """A broker account is no longer reachable through a login (closed, or login disconnected)."""

    account_id: int
    login_id: str
    reason: str = ""


class TokenRenewed(Event, frozen=True, kw_only=True, tag="TokenRenewed"):
    """A login has a fresh token in the tokens bucket (tokens are never in events)."""

    login_id: str
    user_id: int
    expiration_time: str


class ReauthRequired(Event, frozen=True, kw_only=True, tag="ReauthRequired"):
    """A login can no longer be kept valid without a person."""

    login_id: str
    reason: str


class MessageTerminated(Event, frozen=True, kw_only=True, tag="MessageTerminated"):
    """A message that can never be processed was terminated (a poison message), and why."""

    stream: str
    consumer: str
    subject: str
    stream_seq: int
    reason: str


class TradingStateChanged(Event, frozen=True, kw_only=True, tag="TradingStateChanged"):
    """Trading state of a scope changed: ``global``, ``strategy.<id>`` or ``account.<id>``."""

    scope: str
    state: TradingState
    reason: str = ""


class KillSwitchEngaged(Event, frozen=True, kw_only=True, tag="KillSwitchEngaged"):
    """Halt everything, cancel every working order and flatten every position."""

    reason: str
    requested_by: str = ""


class FlattenCompleted(Event, frozen=True, kw_only=True, tag="FlattenCompleted"):
    """One replica finished the kill switch for the accounts it owns."""

    kill_event_id: str
    owner: str
    accounts: int
    cancelled: int
    liquidated: int
    failed: int = 0


AnyEvent = (
    SignalReceived
    | ExecBatch
    | SignalPlanned
    | IntentSkipped
    | IntentExpired
    | OrderAccepted
    | OrderRejected
    | OrderOutcomeUnknown
    | FillReceived
    | FillFees
    | PositionReported
    | PositionDrift
    | AccountLinked
    | AccountUnlinked
    | TokenRenewed
    | ReauthRequired
    | TradingStateChanged
    | KillSwitchEngaged
    | FlattenCompleted
    | MessageTerminated
)
