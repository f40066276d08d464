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
from typing import TypeVar

from nats.aio.msg import Msg

from phalanx_common.backoff import Backoff, Retrying
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.errors import Poison, Retry
from phalanx_common.events import AnyEvent, ExecBatch, OrderIntent
from phalanx_common.telemetry import SpanAttributes, span
from phalanx_executor.account_order import AccountOrder
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.claim_leases import ClaimLeases
from phalanx_executor.decision_inputs import working_orders
from phalanx_executor.decisions import Decision, decide
from phalanx_executor.gates import Gates
from phalanx_executor.intents import TERMINAL, Claim, IntentStore, LostRace
from phalanx_executor.lookup import find_order_by_cl_ord_id
from phalanx_executor.outcome_events import OutcomeEvents
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool, LoginNotReady
from phalanx_executor.published_outcomes import PublishedOutcomes
from phalanx_executor.ratelimit import Budget, RateLimiter
from phalanx_executor.send_checks import SendChecks
from phalanx_executor.step_errors import (
    Expired,
    FailedBeforeSending,
    HandBack,
    NotSent,
    RefusedStep,
    Unknown,
)
from phalanx_executor.venue_calls import VenueCalls
from phalanx_executor.venue_steps import VenueSteps
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker_settings import IntentOutcome, WorkerSettings
from phalanx_tradovate import TradovateSocket
from phalanx_tradovate import errors as tv_errors

__all__ = ["BatchWorker", "IntentOutcome", "RefusedStep", "WorkerSettings"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_DONE = frozenset({"accepted", "rejected", "expired", "duplicate"})
_ACKNOWLEDGED = frozenset({"accepted", "rejected", "expired"})  # ended by this delivery


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
        self._store = store
        self._pool = pool
        self.permits = permits or Permits(limiter)
        self._view = view
        self._gates = gates
        self._clock = clock
        self._s = settings
        if calls is None:  # standalone (tests); the service passes the replica's one book's calls
            book = BudgetBook(settings.login_windows, settings.ip_windows, settings.egress_ip)
            calls = VenueCalls(self.permits, book, lockout_s=settings.lockout_s)
        self.calls = calls
        self.metrics = self.permits.metrics
        self._inflight: set[str] = set()
        self._account_locks: dict[int, asyncio.Lock] = {}
        self._leases = leases
        self._order = order
        self._outcomes = OutcomeEvents(bus, clock, self.metrics)
        self._checks = SendChecks(self.permits, self.calls.book, pool, clock, settings)
        self._steps = VenueSteps(
            view, self.calls, self._checks, lambda i: self._still_owner(i), clock, settings
        )
        self.placed = 0

    @property
    def published(self) -> PublishedOutcomes:
        """The terminal outcomes this replica published while their batch is open (ADR-0160)."""
        return self._outcomes.published

    def begin_stop(self) -> None:
        """Graceful stop: start no intent, and hand back those still waiting to send."""
        self._checks.begin_stop()

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
        open_ = True  # nak'ed (Retry) or failed: the batch comes back
        with span("execute batch", attributes):
            try:
                await self._handle_batch(event, msg)
                open_ = False
            except Poison:
                open_ = False  # dead-lettered: it does not come back
                raise
            finally:
                self.published.batch_ended(
                    event.batch_id, (i.intent_id for i in event.intents), open_=open_
                )

    async def _handle_batch(self, event: ExecBatch, msg: Msg) -> None:
        if self._order is not None:  # ADR-0051: queued in signal order before anything runs
            await asyncio.gather(*(self._order.enter(i) for i in event.intents))
        if self._checks.stopping.is_set():
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
            delay = 0.5 if self._checks.stopping.is_set() else 2.0
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
            if self._checks.past_deadline(intent):
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
                await self._outcomes.republish(intent, claim.record)
                return IntentOutcome(intent.intent_id, "duplicate")
            return IntentOutcome(intent.intent_id, "pending")
        finally:
            self._store.forget(intent.intent_id)

    async def _execute(self, intent: OrderIntent) -> IntentOutcome:
        self._inflight.add(intent.intent_id)
        try:
            claim = await self._store.claim(intent.intent_id, self._clock.time_ns())
            if claim.fresh:  # ADR-0181: its youth protects it until the lease is written
                async with self._lease(intent.intent_id, claim.record.claimed_ns):
                    return self._ended(await self._attempt(intent, claim))
            return await self._resume(intent, claim)
        except LostRace as exc:
            log.info("intent %s: %s; left to its owner", intent.intent_id, exc)
            return IntentOutcome(intent.intent_id, "pending")
        finally:
            self._inflight.discard(intent.intent_id)
            self._store.forget(intent.intent_id)
            self._steps.sent_ns.pop(intent.intent_id, None)

    def _ended(self, outcome: IntentOutcome) -> IntentOutcome:
        """Tell the leases when this delivery made the claim terminal (nothing to delete)."""
        if self._leases is not None and outcome.state in _ACKNOWLEDGED:
            self._leases.ended(outcome.intent_id)
        return outcome

    def _lease(
        self, intent_id: str, claimed_ns: int | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        if self._leases is None:
            return contextlib.nullcontext()
        return self._leases.hold(intent_id, claimed_ns)

    async def _resume(self, intent: OrderIntent, claim: Claim) -> IntentOutcome:
        record = claim.record
        if record.state in TERMINAL:
            await self._outcomes.republish(intent, claim.record)
            return IntentOutcome(intent.intent_id, "duplicate")
        if self._leases is not None and await self._leases.holder(intent.intent_id) is not None:
            return IntentOutcome(intent.intent_id, "pending")  # its owner is alive and at it
        age_s = (self._clock.time_ns() - record.claimed_ns) / 1e9
        if age_s < self._s.reconcile_grace_s:
            return IntentOutcome(intent.intent_id, "pending")  # its claimant may still be at it
        async with self._lease(intent.intent_id):
            if record.state == "claimed":  # claimant gone without an outcome: maybe sent
                claim = await self._store.move(claim, "unknown", reason="claim-without-outcome")
                await self._outcomes.unknown(
                    intent, f"claimed by {record.owner} without an outcome"
                )
            return self._ended(await self._reconcile(intent, claim, sent_ns=record.claimed_ns))

    async def _attempt(self, intent: OrderIntent, claim: Claim) -> IntentOutcome:
        self._steps.sent_ns.pop(intent.intent_id, None)
        if self._checks.past_deadline(intent):
            return await self._expire(intent, claim, "before connecting")
        prepared = await self._prepare(intent, claim)
        if isinstance(prepared, IntentOutcome):
            return prepared
        sock, contract_id, position = prepared
        working = working_orders(self._view, intent.account_id, contract_id)
        decision = self._gates.apply(intent, position, decide(intent, position, working))
        if decision.refused:
            return await self._reject(intent, claim, decision.refused, decision.text)
        return await self._carry_out(intent, claim, sock, decision, contract_id)

    async def _prepare(
        self, intent: OrderIntent, claim: Claim
    ) -> tuple[TradovateSocket, int, int] | IntentOutcome:
        """The login's socket, the contract and the known position; or the claim released."""
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
        if intent.kind == "cancel":
            return sock, contract_id, 0  # a cancel does not depend on the position
        known = await self._view.wait_known_position(
            intent.login_id, intent.account_id, contract_id, self._s.position_wait_s
        )
        if known is None:  # ADR-0060: never decide on a guess
            await self._store.release(claim)
            log.info("intent %s: position not known; released for redelivery", intent.intent_id)
            return IntentOutcome(intent.intent_id, "not-ready")
        return sock, contract_id, known

    async def _carry_out(
        self,
        intent: OrderIntent,
        claim: Claim,
        sock: TradovateSocket,
        decision: Decision,
        contract_id: int,
    ) -> IntentOutcome:
        sent_ns = self._clock.time_ns()
        try:
            order_id, legs = await self._steps.run(intent, sock, decision, contract_id)
        except Expired as exc:
            return await self._expire(intent, claim, str(exc))
        except (NotSent, HandBack) as exc:
            await self._store.release(claim)
            log.info("intent %s: %s; released for redelivery", intent.intent_id, exc)
            return IntentOutcome(intent.intent_id, "not-ready")
        except FailedBeforeSending as exc:
            await self._store.release(claim)  # nothing was sent: a redelivery may retry
            raise exc.cause from None
        except Unknown as exc:
            claim = await self._store.move(claim, "unknown", reason=str(exc))
            await self._outcomes.unknown(intent, str(exc))
            # ADR-0050: the grace runs from when the last request actually went out.
            return await self._reconcile(
                intent, claim, self._steps.sent_ns.get(intent.intent_id, sent_ns)
            )
        except RefusedStep as exc:
            return await self._reject(intent, claim, exc.reason, exc.text)
        sent_ns = self._steps.sent_ns.get(intent.intent_id, sent_ns)
        return await self._accept(
            intent, claim, order_id, legs, decision.operation, sent_ns, note=decision.note
        )

    # -- unknown outcomes ---------------------------------------------------------------------

    async def _reconcile(self, intent: OrderIntent, claim: Claim, sent_ns: int) -> IntentOutcome:
        """Find the order by clOrdId; retry only once the venue provably has none."""
        deadline = self._clock.monotonic() + self._s.reconcile_deadline_s
        retrying = Retrying(Backoff(first_s=0.5, max_s=5.0), self._clock.sleep)
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
            await retrying.pause()

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
        await self._outcomes.accepted(intent, order_id, legs, operation, sent_ns, recovered, note)
        return IntentOutcome(intent.intent_id, "accepted")

    async def _still_owner(self, intent: OrderIntent) -> None:
        """Just before a send: the claim is still ours, at our revision, with our lease alive
        (or, before its deferred first write, the claim young enough; ADR-0181).

        Raises:
            LostRace: if not; nothing is sent and the intent is left to its new owner.
        """
        await self._store.verify(intent.intent_id)
        if self._leases is not None and not self._leases.held(intent.intent_id):
            raise LostRace(f"{intent.intent_id}: the lease on the claim is running out")

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
                    await self._outcomes.republish(intent, claim.record)
                else:
                    await self._outcomes.unknown(intent, f"{text} while {claim.record.state}")
            except Exception:
                log.exception("intent %s: no outcome recorded at dead-lettering", intent.intent_id)
            finally:
                self._store.forget(intent.intent_id)

    async def _expire(self, intent: OrderIntent, claim: Claim, text: str) -> IntentOutcome:
        await self._store.move(claim, "expired", reason=text)
        self.metrics.order_outcome(intent.strategy_id, "expired")
        await self._outcomes.expired(intent, text)
        return IntentOutcome(intent.intent_id, "expired")

    async def _reject(
        self, intent: OrderIntent, claim: Claim, reason: str, text: str
    ) -> IntentOutcome:
        await self._store.move(claim, "rejected", reason=reason)
        self.metrics.order_outcome(intent.strategy_id, "rejected")
        await self._outcomes.rejected(intent, reason, text)
        return IntentOutcome(intent.intent_id, "rejected")
