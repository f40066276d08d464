"""Shard worker: runs each intent of a batch to a terminal outcome, at most once (ADR-0006).

For each intent: claim it (KV create; a second claim loses), check trading state and guards,
decide the venue steps from the account's live position (:mod:`decisions`), take a permit per
request (exits first when the budget is short), send, and record the outcome in the claim and
on the bus. An unknown outcome (timeout, dropped socket) is resolved by looking the order up by
``clOrdId`` at the venue; the intent is retried only when the venue provably has no such order.
A batch is acked when every intent is terminal; otherwise it is nak'ed and comes back.

Ownership and order (ADR-0050, ADR-0051): a claim's owner holds a lease on it while it works
(:mod:`claim_leases`) and checks just before every send that the claim is still its own (KV
revision); an account's intents run in signal order (:mod:`account_order`); a permit wait that
would hold a shard's slot for long, or a stopping replica, hands unsent intents back.

Spans (ADR-0070): ``execute batch`` per delivery of a batch, ``execute intent`` per account
(under it), and per request of the intent ``permit wait`` and ``venue <step>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from nats.aio.msg import Msg
from opentelemetry.trace import SpanKind

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.errors import Poison, Retry
from phalanx_common.events import (
    AnyEvent,
    ExecBatch,
    IntentExpired,
    OrderAccepted,
    OrderIntent,
    OrderOutcomeUnknown,
    OrderRejected,
    VenueAction,
)
from phalanx_common.telemetry import SpanAttributes, span
from phalanx_executor.account_order import AccountOrder
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.claim_leases import ClaimLeases
from phalanx_executor.decision_inputs import working_orders
from phalanx_executor.decisions import Decision, Step, decide
from phalanx_executor.gates import Gates
from phalanx_executor.intents import TERMINAL, Claim, IntentStore, LostRace
from phalanx_executor.legs import resize_leg
from phalanx_executor.lookup import find_order_by_cl_ord_id
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool, LoginNotReady
from phalanx_executor.ratelimit import Budget, RateLimiter
from phalanx_executor.venue_calls import VenueCalls
from phalanx_executor.venue_view import VenueView
from phalanx_tradovate import TradovateSocket, wire
from phalanx_tradovate import errors as tv_errors
from phalanx_tradovate.classes import ErrorClass, classify

__all__ = ["BatchWorker", "IntentOutcome", "WorkerSettings"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_DONE = frozenset({"accepted", "rejected", "expired", "duplicate"})
_ACKNOWLEDGED = frozenset({"accepted", "rejected", "expired"})  # ended by this delivery
_MAX_PENALTIES = 3  # resends with a p-ticket before the intent ends "venue-penalty"
_MAX_REFUSALS = 3  # tries of a request the venue refused for a passing reason (ADR-0055)


@dataclass(frozen=True)
class IntentOutcome:
    """What happened to one intent in this delivery.

    ``state`` is accepted | rejected | duplicate (terminal) or not-ready | pending | unresolved
    (the batch comes back later).
    """

    intent_id: str
    state: str


@dataclass(frozen=True)
class WorkerSettings:
    """Knobs of the worker (from ExecutorSettings)."""

    login_windows: tuple[tuple[int, float], ...] = ((70, 61.0), (4500, 3601.0))
    ip_windows: tuple[tuple[int, float], ...] = ()
    egress_ip: str = "default"
    reversal_wait_s: float = 10.0
    reconcile_grace_s: float = 12.0
    reconcile_deadline_s: float = 60.0
    lockout_s: float = 3600.0
    settle_s: float = 2.0
    position_wait_s: float = 5.0
    batch_pause_s: float = 0.0
    # ADR-0050: a permit wait longer than this hands the unsent intent back (its batch comes
    # back later), so one budget-bound or locked-out login never holds a shard's slots (0: never).
    permit_handback_s: float = 10.0
    # ADR-0062: a request not sent within this long of its permit takes another (0: never);
    # below the margin of the executor's windows over the venue's (1 s by default).
    permit_max_age_s: float = 0.5
    # ADR-0050: a batch still open on its last delivery is dead-lettered with an outcome per
    # intent (0: redelivered without bound).
    max_deliveries: int = 0


class _Unknown(Exception):
    """A request was sent and its outcome is unknown."""


class _Expired(Exception):
    """The intent's signal passed its deadline before a request was sent."""


class _NotSent(Exception):
    """Nothing could be sent (no socket or token); the claim may be released."""


class _HandBack(Exception):
    """Nothing was sent and the intent goes back (the replica stops, or no permit for long)."""


class _FailedBeforeSending(Exception):
    """An unexpected error (e.g. Redis down) happened before any request was sent."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class BatchWorker:
    """Executes :class:`ExecBatch` messages for the shards this replica owns."""

    def __init__(
        self,
        *,
        bus: Bus,
        store: IntentStore,
        pool: ConnectionPool,
        limiter: RateLimiter,
        view: VenueView,
        gates: Gates,
        clock: Clock,
        settings: WorkerSettings,
        permits: Permits | None = None,
        leases: ClaimLeases | None = None,
        order: AccountOrder | None = None,
        calls: VenueCalls | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._pool = pool
        self.permits = permits or Permits(limiter)
        self._view = view
        self._gates = gates
        self._clock = clock
        self._s = settings
        book = BudgetBook(settings.login_windows, settings.ip_windows, settings.egress_ip)
        self.calls = calls or VenueCalls(self.permits, book, lockout_s=settings.lockout_s)
        self.metrics = self.permits.metrics
        self._inflight: set[str] = set()
        self._account_locks: dict[int, asyncio.Lock] = {}
        self._leases = leases
        self._order = order
        self._sent_ns: dict[str, int] = {}  # intent id -> when its last request went out
        self._stopping = asyncio.Event()
        self.placed = 0

    def begin_stop(self) -> None:
        """Graceful stop: start no intent, and hand back those still waiting to send."""
        self._stopping.set()

    # -- batches ------------------------------------------------------------------------------

    def budgets(self, login_id: str) -> list[Budget]:
        """The budgets one request of ``login_id`` spends."""
        return self.calls.book.for_login(login_id)  # the replica's one book (ADR-0166)

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        """Bus handler for one batch message."""
        if not isinstance(event, ExecBatch):
            raise Poison(f"unexpected {type(event).__name__} on an exec subject")
        attributes: SpanAttributes = {
            "phalanx.batch_id": event.batch_id,
            "phalanx.signal_id": event.signal_id,
            "phalanx.shard": event.shard,
            "phalanx.intents": len(event.intents),
        }
        with span("execute batch", attributes):
            await self._handle_batch(event, msg)

    async def _handle_batch(self, event: ExecBatch, msg: Msg) -> None:
        if self._order is not None:  # ADR-0051: queued in signal order before anything runs
            await asyncio.gather(*(self._order.enter(i) for i in event.intents))
        if self._stopping.is_set():
            raise Retry("replica stopping: batch handed back", delay_s=0.5)
        # Every intent runs to its end before the batch is acked or nak'ed, so a redelivery
        # never races an attempt still in flight here.
        results = await asyncio.gather(
            *(self._execute_timed(i, event.ts_event) for i in event.intents),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        for exc in failed:
            log.error("batch %s: intent failed: %r", event.batch_id, exc)
        unfinished = [
            intent
            for intent, r in zip(event.intents, results, strict=True)
            if not (isinstance(r, IntentOutcome) and r.state in _DONE)
        ]
        if unfinished:
            delivered = msg.metadata.num_delivered if msg.metadata else 1
            if self._s.max_deliveries and delivered >= self._s.max_deliveries:
                await self._dead_letter(unfinished, delivered)
                raise Poison(
                    f"batch {event.batch_id}: {len(unfinished)} intents unfinished "
                    f"after {delivered} deliveries"
                )
            delay = 0.5 if self._stopping.is_set() else 2.0
            raise Retry(f"{len(unfinished)} intents not terminal, {len(failed)} failed", delay)
        if self._s.batch_pause_s > 0:  # the seed's fixed pause, kept as a knob (0: none)
            await asyncio.sleep(self._s.batch_pause_s)

    # -- one intent ---------------------------------------------------------------------------

    async def _execute_timed(self, intent: OrderIntent, received_ns: int) -> IntentOutcome:
        """:meth:`execute`, observing webhook receipt (the batch's ``ts_event``) → this
        account's outcome when it ends here."""
        outcome = await self.execute(intent)
        if received_ns and outcome.state in _ACKNOWLEDGED:
            self.metrics.acknowledged((self._clock.time_ns() - received_ns) / 1e9)
        return outcome

    async def execute(self, intent: OrderIntent) -> IntentOutcome:
        """Run one intent to a terminal outcome, or leave it resumable.

        Intents of one account run one at a time, in the order they arrive (the lock is FIFO and
        is requested before the first await), so a signal's exit never overtakes its entry.
        """
        if intent.intent_id in self._inflight:
            return IntentOutcome(intent.intent_id, "pending")
        lock = self._account_locks.setdefault(intent.account_id, asyncio.Lock())
        attributes: SpanAttributes = {
            "phalanx.intent_id": intent.intent_id,
            "phalanx.signal_id": intent.signal_id,
            "phalanx.account_id": intent.account_id,
            "phalanx.login_id": intent.login_id,
            "phalanx.kind": intent.kind,
        }
        with span("execute intent", attributes) as current:
            outcome = await self._execute_in_order(intent, lock)
            current.set_attribute("phalanx.outcome", outcome.state)
            return outcome

    async def _execute_in_order(self, intent: OrderIntent, lock: asyncio.Lock) -> IntentOutcome:
        async with lock:
            if self._order is None:
                return await self._execute(intent)
            waiting = await self._wait_turn(intent)
            if waiting is not None:
                return waiting
            outcome = await self._execute(intent)
            if outcome.state in _DONE:
                await self._order.leave(intent)
            return outcome

    async def _wait_turn(self, intent: OrderIntent) -> IntentOutcome | None:
        """``None`` when no earlier intent of the account is unresolved (ADR-0051).

        Enters the intent first (idempotent; the batch entered it already), on the same read.
        """
        assert self._order is not None
        for earlier in await self._order.enter_and_ahead(intent):
            if await self._store.is_terminal(earlier):  # its worker ended before leaving
                await self._order.drop(intent.account_id, earlier)
                continue
            if self._past_deadline(intent):
                return await self._expire_unstarted(
                    intent, f"not sent: earlier intent {earlier} of the account unresolved"
                )
            log.info("intent %s waits for %s of the same account", intent.intent_id, earlier)
            return IntentOutcome(intent.intent_id, "waiting")
        return None

    async def _expire_unstarted(self, intent: OrderIntent, text: str) -> IntentOutcome:
        claim = await self._store.claim(intent.intent_id, self._clock.time_ns())
        try:
            if claim.fresh:
                return await self._expire(intent, claim, text)
            if claim.record.state in TERMINAL:
                await self._republish(intent, claim)
                return IntentOutcome(intent.intent_id, "duplicate")
            return IntentOutcome(intent.intent_id, "pending")
        finally:
            self._store.forget(intent.intent_id)

    async def _execute(self, intent: OrderIntent) -> IntentOutcome:
        self._inflight.add(intent.intent_id)
        try:
            claim = await self._store.claim(intent.intent_id, self._clock.time_ns())
            if claim.fresh:
                async with self._lease(intent.intent_id):
                    return self._ended(await self._attempt(intent, claim))
            return await self._resume(intent, claim)
        except LostRace as exc:
            log.info("intent %s: %s; left to its owner", intent.intent_id, exc)
            return IntentOutcome(intent.intent_id, "pending")
        finally:
            self._inflight.discard(intent.intent_id)
            self._store.forget(intent.intent_id)
            self._sent_ns.pop(intent.intent_id, None)

    def _ended(self, outcome: IntentOutcome) -> IntentOutcome:
        """Tell the leases when this delivery made the claim terminal (nothing to delete)."""
        if self._leases is not None and outcome.state in _ACKNOWLEDGED:
            self._leases.ended(outcome.intent_id)
        return outcome

    def _lease(self, intent_id: str) -> contextlib.AbstractAsyncContextManager[None]:
        if self._leases is None:
            return contextlib.nullcontext()
        return self._leases.hold(intent_id)

    async def _resume(self, intent: OrderIntent, claim: Claim) -> IntentOutcome:
        record = claim.record
        if record.state in TERMINAL:
            await self._republish(intent, claim)
            return IntentOutcome(intent.intent_id, "duplicate")
        if self._leases is not None and await self._leases.holder(intent.intent_id) is not None:
            return IntentOutcome(intent.intent_id, "pending")  # its owner is alive and at it
        age_s = (self._clock.time_ns() - record.claimed_ns) / 1e9
        if age_s < self._s.reconcile_grace_s:
            return IntentOutcome(intent.intent_id, "pending")  # its claimant may still be at it
        async with self._lease(intent.intent_id):
            if record.state == "claimed":  # claimant gone without an outcome: maybe sent
                claim = await self._store.move(claim, "unknown", reason="claim-without-outcome")
                await self._publish_unknown(intent, f"claimed by {record.owner} without an outcome")
            return self._ended(await self._reconcile(intent, claim, sent_ns=record.claimed_ns))

    async def _attempt(self, intent: OrderIntent, claim: Claim) -> IntentOutcome:
        self._sent_ns.pop(intent.intent_id, None)
        if self._past_deadline(intent):
            return await self._expire(intent, claim, "before connecting")
        try:
            sock = await self._pool.get(intent.login_id)
            contract_id = await self._view.contract_id(intent.login_id, intent.symbol)
        except LoginNotReady as exc:
            log.info("intent %s: %s; released for redelivery", intent.intent_id, exc)
            await self._store.release(claim)
            return IntentOutcome(intent.intent_id, "not-ready")
        except BaseException:
            await self._store.release(claim)  # nothing was sent: a redelivery may retry
            raise

        position = 0  # a cancel does not depend on the position
        if intent.kind != "cancel":
            known = await self._view.wait_known_position(
                intent.login_id, intent.account_id, contract_id, self._s.position_wait_s
            )
            if known is None:  # ADR-0060: never decide on a guess
                await self._store.release(claim)
                log.info("intent %s: position not known; released for redelivery", intent.intent_id)
                return IntentOutcome(intent.intent_id, "not-ready")
            position = known
        working = working_orders(self._view, intent.account_id, contract_id)
        decision = self._gates.apply(intent, position, decide(intent, position, working))
        if decision.refused:
            return await self._reject(intent, claim, decision.refused, decision.text)

        sent_ns = self._clock.time_ns()
        try:
            order_id, legs = await self._run(intent, sock, decision, contract_id)
        except _Expired as exc:
            return await self._expire(intent, claim, str(exc))
        except (_NotSent, _HandBack) as exc:
            await self._store.release(claim)
            log.info("intent %s: %s; released for redelivery", intent.intent_id, exc)
            return IntentOutcome(intent.intent_id, "not-ready")
        except _FailedBeforeSending as exc:
            await self._store.release(claim)  # nothing was sent: a redelivery may retry
            raise exc.cause from None
        except _Unknown as exc:
            claim = await self._store.move(claim, "unknown", reason=str(exc))
            await self._publish_unknown(intent, str(exc))
            # ADR-0050: the grace runs from when the last request actually went out.
            return await self._reconcile(
                intent, claim, self._sent_ns.get(intent.intent_id, sent_ns)
            )
        except RefusedStep as exc:
            return await self._reject(intent, claim, exc.reason, exc.text)
        sent_ns = self._sent_ns.get(intent.intent_id, sent_ns)
        return await self._accept(
            intent, claim, order_id, legs, decision.operation, sent_ns, note=decision.note
        )

    # -- venue steps --------------------------------------------------------------------------

    async def _run(
        self, intent: OrderIntent, sock: TradovateSocket, decision: Decision, contract_id: int
    ) -> tuple[int | None, tuple[int | None, int | None]]:
        order_id: int | None = None
        legs: tuple[int | None, int | None] = (None, None)
        sent_any = False
        for step in decision.steps:
            try:
                if step.kind == "wait_flat":
                    flat = await self._view.wait_for(
                        lambda: self._view.known_position(intent.account_id, contract_id) == 0,
                        self._s.reversal_wait_s,
                    )
                    if not flat:
                        raise RefusedStep(
                            "reversal-exit-not-filled",
                            f"position not flat {self._s.reversal_wait_s:g}s after liquidating; "
                            "entry not sent",
                        )
                    continue
                priority = Priority.ENTRY if step.kind == "entry" else Priority.PROTECT
                result = await self._call(
                    intent, sock, step, contract_id, priority, hand_back=not sent_any
                )
                sent_any = True
                if result is not None:
                    order_id, legs = result
                    placed = result[0]
                    if placed is not None and step.kind != "cancel":
                        # Decide the account's next intent on the venue's state after this one.
                        await self._view.wait_for(
                            lambda p=placed: self._view.resolved(p),  # type: ignore[misc]
                            self._s.settle_s,
                        )
            except tv_errors.TradovateError as exc:
                # ADR-0055: one table says what each venue error means for the intent.
                verdict = classify(exc, lockout_s=self._s.lockout_s)
                if verdict.cls is ErrorClass.FINAL:
                    raise RefusedStep(verdict.reason, verdict.text) from exc
                if verdict.cls is ErrorClass.RETRYABLE and not sent_any:
                    raise _NotSent(str(exc)) from exc
                raise _Unknown(f"{type(exc).__name__}: {exc}") from exc
            except (RefusedStep, LostRace, _HandBack):
                raise
            except _Expired as exc:
                if sent_any:
                    raise _Expired(f"{exc}, after earlier steps were sent") from None
                raise
            except Exception as exc:  # e.g. no permit because Redis is down: fail closed
                if not sent_any:
                    raise _FailedBeforeSending(exc) from exc
                raise
        return order_id, legs

    async def _call(
        self,
        intent: OrderIntent,
        sock: TradovateSocket,
        step: Step,
        contract_id: int,
        priority: Priority,
        hand_back: bool = False,
    ) -> tuple[int | None, tuple[int | None, int | None]] | None:
        ticket: str | None = None
        penalties = refusals = 0
        while True:
            with span("permit wait", {"phalanx.login_id": intent.login_id}):
                await self._permit_before_deadline(intent, step, priority, hand_back)
            permitted_ns = self._clock.time_ns()
            await self._still_owner(intent)
            self._token_still_fresh(intent, step, hand_back)
            if self._permit_went_stale(intent, step, permitted_ns):
                continue  # ADR-0062: the old permit still counts; this request takes another
            self._sent_ns[intent.intent_id] = self._clock.time_ns()
            venue: SpanAttributes = {
                "phalanx.step": step.kind,
                "phalanx.account_id": intent.account_id,
                "phalanx.penalty_ticket": ticket is not None,
            }
            try:
                with span(f"venue {step.kind}", venue, kind=SpanKind.CLIENT):
                    return await self._send(intent, sock, step, contract_id, ticket)
            except tv_errors.TradovateError as exc:
                # ADR-0004/0056: a penalty or lockout blocks the whole login at once (blocks
                # only extend); a penalised request goes again with its ticket after p-time.
                await self.calls.honour(intent.login_id, exc)
                if isinstance(exc, tv_errors.LockoutError) and hand_back:
                    # ADR-0111: the venue did not handle it (or it was never sent: the socket
                    # knows the lockout); the login is blocked for the lockout, so the intent
                    # goes back and is tried again once the lockout is over, within its deadline
                    raise _HandBack(f"{step.kind} not sent: the login is locked out") from exc
                verdict = classify(exc, lockout_s=self._s.lockout_s)
                if verdict.ticket is not None:
                    penalties += 1
                    if penalties >= _MAX_PENALTIES:
                        raise RefusedStep("venue-penalty", "penalties did not end") from exc
                    ticket = verdict.ticket
                    continue
                if verdict.cls is ErrorClass.RETRYABLE and isinstance(exc, tv_errors.OrderRejected):
                    # ADR-0055: refused for a passing reason; nothing was placed: a few more
                    # tries with a back-off, then the broker's reason is final.
                    refusals += 1
                    if refusals >= _MAX_REFUSALS:
                        raise RefusedStep(
                            verdict.reason, f"{verdict.text} ({refusals} tries)"
                        ) from exc
                    await self._clock.sleep(0.5 * 2**refusals)
                    ticket = None
                    continue
                raise

    async def _send(
        self,
        intent: OrderIntent,
        sock: TradovateSocket,
        step: Step,
        contract_id: int,
        ticket: str | None,
    ) -> tuple[int | None, tuple[int | None, int | None]] | None:
        self._view.trace_request(intent.intent_id)  # a fill may come before the answer
        if step.kind == "liquidate":
            liq = wire.LiquidatePosition(accountId=intent.account_id, contractId=contract_id)
            done = await sock.liquidate_position(liq, p_ticket=ticket)
            return done.orderId, (None, None)
        if step.kind == "resize":
            await resize_leg(sock, self._view, step, ticket, self._s.settle_s)
            return None
        if step.kind == "cancel":
            assert step.order_id is not None
            try:
                await sock.cancel_order(wire.CancelOrder(orderId=step.order_id), p_ticket=ticket)
            except tv_errors.OrderRejected as exc:
                if exc.failure_reason != "TooLate":
                    raise
                # already filled or canceled (e.g. with its parent): nothing left to cancel
            return step.order_id, (None, None)
        assert step.action is not None
        entry = step.kind == "entry"  # otherwise a market reduce
        base = wire.PlaceOrder(
            accountSpec=intent.account_spec,
            accountId=intent.account_id,
            action=step.action,
            symbol=intent.symbol,
            orderQty=step.quantity,
            orderType=intent.order_type if entry else "Market",
            price=intent.limit_price if entry else None,
            stopPrice=intent.stop_price if entry else None,
            pegDifference=intent.peg_difference if entry else None,
            timeInForce=intent.time_in_force if entry else None,
            clOrdId=intent.intent_id,
            isAutomated=True,
        )
        legs = self._bracket(intent, step.action) if step.kind == "entry" else []
        if not legs:
            single = await sock.place_order(base, p_ticket=ticket)
            self._view.remember_order(single.orderId, intent.account_id, intent.intent_id)
            return single.orderId, (None, None)
        oso = await sock.place_oso(
            wire.PlaceOso(
                **msgspec.structs.asdict(base),
                bracket1=legs[0],
                bracket2=legs[1] if len(legs) > 1 else None,
            ),
            p_ticket=ticket,
        )
        for placed in (oso.orderId, oso.oso1Id, oso.oso2Id):
            self._view.remember_order(placed, intent.account_id)
        self._view.remember_order(oso.orderId, intent.account_id, intent.intent_id)
        return oso.orderId, (oso.oso1Id, oso.oso2Id)

    @staticmethod
    def _bracket(intent: OrderIntent, action: VenueAction) -> list[wire.RestrainedOrderVersion]:
        exit_action: VenueAction = "Sell" if action == "Buy" else "Buy"
        legs = []
        tif = intent.bracket_time_in_force
        if intent.take_profit is not None:
            legs.append(
                wire.RestrainedOrderVersion(
                    action=exit_action,
                    orderType="Limit",
                    price=intent.take_profit,
                    timeInForce=tif,
                )
            )
        if intent.stop_loss is not None:
            legs.append(
                wire.RestrainedOrderVersion(
                    action=exit_action,
                    orderType=intent.stop_loss_type,
                    stopPrice=intent.stop_loss,
                    price=intent.stop_loss_limit if intent.stop_loss_type == "StopLimit" else None,
                    pegDifference=(
                        intent.stop_loss_peg if intent.stop_loss_type == "TrailingStop" else None
                    ),
                    timeInForce=tif,
                )
            )
        return legs

    # -- unknown outcomes ---------------------------------------------------------------------

    async def _reconcile(self, intent: OrderIntent, claim: Claim, sent_ns: int) -> IntentOutcome:
        """Find the order by clOrdId; retry only once the venue provably has none."""
        deadline = self._clock.monotonic() + self._s.reconcile_deadline_s
        delay = 0.5
        while True:
            try:
                found = await self._look_up(intent)
            except (LoginNotReady, tv_errors.TradovateError) as exc:
                log.info("intent %s: lookup failed (%s); will retry", intent.intent_id, exc)
                found = None
                proven = False
            else:
                proven = True
            if found is not None:
                return await self._accept(
                    intent, claim, found, (None, None), "recovered", sent_ns, recovered=True
                )
            waited_s = (self._clock.time_ns() - sent_ns) / 1e9
            if proven and waited_s >= self._s.reconcile_grace_s:
                # The venue has no order with this clOrdId, long after the last send: retry.
                attempt = claim.record.attempt + 1
                claim = await self._store.move(
                    claim, "claimed", attempt=attempt, claimed_ns=self._clock.time_ns(), reason=""
                )
                log.warning("intent %s: not at the venue; attempt %d", intent.intent_id, attempt)
                return await self._attempt(intent, claim)
            if self._clock.monotonic() > deadline:
                return IntentOutcome(intent.intent_id, "unresolved")
            await self._clock.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _look_up(self, intent: OrderIntent) -> int | None:
        known = self._view.order_for(intent.intent_id)
        if known is not None:
            return known
        if intent.kind == "cancel" or (
            intent.kind == "exit" and intent.exit_quantity is None and intent.exit_percent is None
        ):
            return None  # liquidation and cancels carry no clOrdId; re-deciding is idempotent
        sock = await self._pool.get(intent.login_id)

        def call(send: Callable[[str | None], Awaitable[T]]) -> Awaitable[T]:
            return self.calls.call(intent.login_id, send, priority=Priority.RECONCILE)

        return await find_order_by_cl_ord_id(sock, intent.account_id, intent.intent_id, call)

    # -- outcomes -----------------------------------------------------------------------------

    async def _accept(
        self,
        intent: OrderIntent,
        claim: Claim,
        order_id: int | None,
        legs: tuple[int | None, int | None],
        operation: str,
        sent_ns: int,
        recovered: bool = False,
        note: str = "",
    ) -> IntentOutcome:
        self.placed += 1
        await self._store.move(claim, "accepted", order_id=order_id, reason=note)
        self.metrics.order_outcome(intent.strategy_id, "accepted")
        await self._publish_accepted(intent, order_id, legs, operation, sent_ns, recovered, note)
        return IntentOutcome(intent.intent_id, "accepted")

    async def _still_owner(self, intent: OrderIntent) -> None:
        """Just before a send: the claim is still ours, at our revision, with our lease alive.

        Raises:
            LostRace: if not; nothing is sent and the intent is left to its new owner.
        """
        await self._store.verify(intent.intent_id)
        if self._leases is not None and not self._leases.held(intent.intent_id):
            raise LostRace(f"{intent.intent_id}: the lease on the claim is running out")

    def _token_still_fresh(self, intent: OrderIntent, step: Step, hand_back: bool) -> None:
        """Just before a send: the socket's token is not about to expire (ADR-0110).

        A permit wait can outlast a token whose renewal failed; nothing goes out on it.

        Raises:
            _HandBack: nothing of the intent was sent yet: it goes back and waits for a token.
            RefusedStep: earlier steps were sent; the rest is not, and the intent says why.
        """
        if self._pool.token_fresh(intent.login_id):
            return
        text = f"{step.kind} not sent: the login's token expired or is about to"
        if hand_back:
            raise _HandBack(text)
        raise RefusedStep("token-expired", text)

    def _permit_went_stale(self, intent: OrderIntent, step: Step, permitted_ns: int) -> bool:
        """Whether the request could not go within ``permit_max_age_s`` of its permit.

        The limiter counts a request when it grants the permit; the venue when it arrives. The
        executor's windows outlast the venue's by a margin (61 s against 60 s), so a request
        that arrives later than that after its permit could land in the venue's window with the
        next window's requests. A stall between permit and send (a slow send-time claim check,
        a starved event loop) longer than ``permit_max_age_s`` therefore costs another permit
        (ADR-0062)."""
        limit_s = self._s.permit_max_age_s
        waited_s = (self._clock.time_ns() - permitted_ns) / 1e9
        if limit_s <= 0 or waited_s <= limit_s:
            return False
        log.info(
            "intent %s: %s not sent %.2fs after its permit (limit %.2fs); taking another",
            intent.intent_id,
            step.kind,
            waited_s,
            limit_s,
        )
        self.metrics.stale_permit(intent.login_id)
        return True

    async def _permit_before_deadline(
        self, intent: OrderIntent, step: Step, priority: Priority, hand_back: bool = False
    ) -> None:
        """Take a permit, but never send after the signal's deadline: the wait for a permit
        (a budget-bound login can wait minutes) ends at the deadline, and the deadline is checked
        again once the permit is in hand, just before the request goes out.

        With ``hand_back`` (nothing of the intent was sent yet), the wait also ends when the
        replica stops or after ``permit_handback_s``: :class:`_HandBack` (ADR-0050)."""
        remaining_s: float | None = None
        if intent.not_after_ns:
            remaining_s = (intent.not_after_ns - self._clock.time_ns()) / 1e9
            if remaining_s <= 0:
                raise _Expired(f"{step.kind} not sent: past the signal's deadline")
        limit_s = remaining_s
        handback_s = self._s.permit_handback_s if hand_back else 0.0
        if handback_s > 0 and (limit_s is None or handback_s < limit_s):
            limit_s = handback_s
        acquire = asyncio.ensure_future(
            self.permits.acquire(self.budgets(intent.login_id), priority)
        )
        stop = asyncio.ensure_future(self._stopping.wait()) if hand_back else None
        try:
            await asyncio.wait(
                {acquire} if stop is None else {acquire, stop},
                timeout=limit_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if stop is not None:
                stop.cancel()
            if not acquire.done():
                # Not awaited: a cancel that lands inside a Redis call can be swallowed there,
                # and the wait would then last until the permit came. A permit granted after
                # this point is simply not used.
                acquire.cancel()
                acquire.add_done_callback(_consume_result)
        if not acquire.cancelled() and acquire.done():
            acquire.result()  # raises what the limiter raised (e.g. Redis down)
            if self._past_deadline(intent):
                raise _Expired(f"{step.kind} not sent: the permit came after the deadline")
            return
        if self._stopping.is_set() and hand_back:
            raise _HandBack(f"{step.kind} not sent: the replica is stopping")
        if limit_s is not None and limit_s == remaining_s:
            raise _Expired(
                f"{step.kind} not sent: no permit of the login's budget before the deadline"
            )
        raise _HandBack(f"{step.kind} not sent: no permit of the login's budget within {limit_s}s")

    async def _dead_letter(self, intents: list[OrderIntent], delivered: int) -> None:
        """A batch that will not come back: every intent still open ends with a visible outcome.

        An intent nobody claimed is rejected (``undeliverable``); one that may have been sent
        stays unknown and says so (its account's later intents keep waiting for it, ADR-0051).
        """
        text = f"batch dead-lettered after {delivered} deliveries"
        for intent in intents:
            claim = await self._store.claim(intent.intent_id, self._clock.time_ns())
            try:
                if claim.fresh:
                    await self._reject(intent, claim, "undeliverable", text)
                    if self._order is not None:
                        await self._order.leave(intent)
                elif claim.record.state in TERMINAL:
                    await self._republish(intent, claim)
                else:
                    await self._publish_unknown(intent, f"{text} while {claim.record.state}")
            except Exception:
                log.exception("intent %s: no outcome recorded at dead-lettering", intent.intent_id)
            finally:
                self._store.forget(intent.intent_id)

    def _past_deadline(self, intent: OrderIntent) -> bool:
        return bool(intent.not_after_ns) and self._clock.time_ns() > intent.not_after_ns

    async def _expire(self, intent: OrderIntent, claim: Claim, text: str) -> IntentOutcome:
        await self._store.move(claim, "expired", reason=text)
        self.metrics.order_outcome(intent.strategy_id, "expired")
        await self._publish_expired(intent, text)
        return IntentOutcome(intent.intent_id, "expired")

    async def _reject(
        self, intent: OrderIntent, claim: Claim, reason: str, text: str
    ) -> IntentOutcome:
        await self._store.move(claim, "rejected", reason=reason)
        self.metrics.order_outcome(intent.strategy_id, "rejected")
        await self._publish_rejected(intent, reason, text)
        return IntentOutcome(intent.intent_id, "rejected")

    async def _republish(self, intent: OrderIntent, claim: Claim) -> None:
        """Publish a terminal outcome again (dropped as a duplicate if it was published)."""
        record = claim.record
        if record.state == "rejected":
            await self._publish_rejected(intent, record.reason, "")
        elif record.state == "expired":
            await self._publish_expired(intent, record.reason)
        else:
            await self._publish_accepted(intent, record.order_id, note=record.reason)

    def _about(self, intent: OrderIntent) -> dict[str, Any]:
        """The fields every outcome event of an intent shares."""
        now = self._clock.time_ns()
        return {
            "event_id": ids.new_event_id(),
            "ts_event": now,
            "ts_init": now,
            "intent_id": intent.intent_id,
            "signal_id": intent.signal_id,
            "strategy_id": intent.strategy_id,
            "account_id": intent.account_id,
            "login_id": intent.login_id,
        }

    async def _publish_accepted(
        self,
        intent: OrderIntent,
        order_id: int | None,
        legs: tuple[int | None, int | None] = (None, None),
        operation: str = "placeoso",
        sent_ns: int = 0,
        recovered: bool = False,
        note: str = "",
    ) -> None:
        event = OrderAccepted(
            **self._about(intent),
            symbol=intent.symbol,
            order_id=order_id or 0,
            oso1_id=legs[0],
            oso2_id=legs[1],
            sent_ns=sent_ns,
            operation=operation,
            recovered=recovered,
            note=note,
        )
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"accepted-{intent.intent_id}")

    async def _publish_rejected(self, intent: OrderIntent, reason: str, text: str) -> None:
        event = OrderRejected(**self._about(intent), reason=reason, text=text)
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"rejected-{intent.intent_id}")

    async def _publish_expired(self, intent: OrderIntent, text: str) -> None:
        now = self._clock.time_ns()
        event = IntentExpired(
            event_id=ids.new_event_id(),
            ts_event=now,
            ts_init=now,
            intent_id=intent.intent_id,
            signal_id=intent.signal_id,
            strategy_id=intent.strategy_id,
            account_id=intent.account_id,
            not_after_ns=intent.not_after_ns,
            stage="before-send",
            text=text,
        )
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"expired-{intent.intent_id}")

    async def _publish_unknown(self, intent: OrderIntent, reason: str) -> None:
        event = OrderOutcomeUnknown(**self._about(intent), reason=reason)
        self.metrics.order_outcome(intent.strategy_id, "unknown")
        subject = subjects.orders_subject(intent.account_id)
        await self._bus.publish(subject, event, msg_id=f"unknown-{event.event_id}")


def _consume_result(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned permit wait's outcome so it is never reported as unretrieved."""
    if not task.cancelled():
        task.exception()


class RefusedStep(Exception):
    """A step found the venue state did not allow going on (e.g. reversal not flat in time)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
