"""The venue steps of one intent: each request under :meth:`VenueCalls.call`, guarded.

A :class:`~phalanx_executor.decisions.Decision` is a list of steps (liquidate, wait flat,
resize a leg, cancel, reduce, entry). Each request takes a permit before the signal's deadline,
checks just before it goes that the claim is still this replica's and the token is fresh, takes
another permit when the first went stale (:mod:`send_checks`), and follows ADR-0055's table on
errors: final ends the intent (:class:`RefusedStep`), retryable before anything was sent
releases it (:class:`NotSent`), anything else after a send is an unknown outcome
(:class:`Unknown`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec

from phalanx_common.clock import Clock
from phalanx_common.events import OrderIntent, VenueAction
from phalanx_common.telemetry import SpanAttributes, span
from phalanx_executor.decisions import Decision, Step
from phalanx_executor.intents import LostRace
from phalanx_executor.legs import resize_leg
from phalanx_executor.permits import Priority
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
from phalanx_executor.venue_view import VenueView
from phalanx_executor.worker_settings import WorkerSettings
from phalanx_tradovate import TradovateSocket, wire
from phalanx_tradovate import errors as tv_errors
from phalanx_tradovate.classes import ErrorClass, Verdict, classify

__all__ = ["Placed", "VenueSteps"]

Placed = tuple[int | None, tuple[int | None, int | None]]
"""The order a step placed (or cancelled) and its bracket legs."""

_MAX_REFUSALS = 3  # tries of a request the venue refused for a passing reason (ADR-0055)


class VenueSteps:
    """Runs a decision's steps for one intent on its login's socket."""

    def __init__(
        self,
        view: VenueView,
        calls: VenueCalls,
        checks: SendChecks,
        still_owner: Callable[[OrderIntent], Awaitable[None]],
        clock: Clock,
        settings: WorkerSettings,
    ) -> None:
        self._view = view
        self._calls = calls
        self._checks = checks
        self._still_owner = still_owner
        self._clock = clock
        self._s = settings
        self.sent_ns: dict[str, int] = {}  # intent id -> when its last request went out

    async def run(
        self, intent: OrderIntent, sock: TradovateSocket, decision: Decision, contract_id: int
    ) -> Placed:
        """Every step of ``decision``; what the last placing step placed."""
        placed: Placed = (None, (None, None))
        sent_any = False
        for step in decision.steps:
            try:
                if step.kind == "wait_flat":
                    await self._wait_flat(intent, contract_id)
                    continue
                result = await self._request(intent, sock, step, contract_id, not sent_any)
                sent_any = True
                if result is not None:
                    placed = result
                    await self._settle(step, result[0])
            except tv_errors.TradovateError as exc:
                raise _after_venue_error(exc, sent_any, self._s.lockout_s) from exc
            except (RefusedStep, LostRace, HandBack):
                raise
            except Expired as exc:
                if sent_any:
                    raise Expired(f"{exc}, after earlier steps were sent") from None
                raise
            except Exception as exc:  # e.g. no permit because Redis is down: fail closed
                if not sent_any:
                    raise FailedBeforeSending(exc) from exc
                raise
        return placed

    async def _wait_flat(self, intent: OrderIntent, contract_id: int) -> None:
        flat = await self._view.wait_for(
            lambda: self._view.known_position(intent.account_id, contract_id) == 0,
            self._s.reversal_wait_s,
        )
        if not flat:
            raise RefusedStep(
                "reversal-exit-not-filled",
                f"position not flat {self._s.reversal_wait_s:g}s after liquidating; entry not sent",
            )

    async def _settle(self, step: Step, placed: int | None) -> None:
        """Decide the account's next intent on the venue's state after this one."""
        if placed is not None and step.kind != "cancel":
            await self._view.wait_for(lambda: self._view.resolved(placed), self._s.settle_s)

    async def _request(
        self,
        intent: OrderIntent,
        sock: TradovateSocket,
        step: Step,
        contract_id: int,
        hand_back: bool,
    ) -> Placed | None:
        guard = _IntentSend(self, intent, step, hand_back)
        venue: SpanAttributes = {"phalanx.step": step.kind, "phalanx.account_id": intent.account_id}

        async def send(ticket: str | None) -> Placed | None:
            return await self._send(intent, sock, step, contract_id, ticket)

        return await self._calls.call(
            intent.login_id, send, guard=guard, name=f"venue {step.kind}", attributes=venue
        )

    async def _send(
        self,
        intent: OrderIntent,
        sock: TradovateSocket,
        step: Step,
        contract_id: int,
        ticket: str | None,
    ) -> Placed | None:
        self._view.trace_request(intent.intent_id)  # a fill may come before the answer
        if step.kind == "liquidate":
            liq = wire.LiquidatePosition(accountId=intent.account_id, contractId=contract_id)
            done = await sock.liquidate_position(liq, p_ticket=ticket)
            return done.orderId, (None, None)
        if step.kind == "resize":
            await resize_leg(sock, self._view, step, ticket, self._s.settle_s)
            return None
        if step.kind == "cancel":
            return await self._cancel(sock, step, ticket)
        return await self._place(intent, sock, step, ticket)

    @staticmethod
    async def _cancel(sock: TradovateSocket, step: Step, ticket: str | None) -> Placed:
        assert step.order_id is not None
        try:
            await sock.cancel_order(wire.CancelOrder(orderId=step.order_id), p_ticket=ticket)
        except tv_errors.OrderRejected as exc:
            if exc.failure_reason != "TooLate":
                raise
            # already filled or canceled (e.g. with its parent): nothing left to cancel
        return step.order_id, (None, None)

    async def _place(
        self, intent: OrderIntent, sock: TradovateSocket, step: Step, ticket: str | None
    ) -> Placed:
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
        legs = _bracket(intent, step.action) if entry else []
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


class _IntentSend:
    """The checks around each send of one step of an intent (a :class:`SendGuard`)."""

    def __init__(self, steps: VenueSteps, intent: OrderIntent, step: Step, hand_back: bool):
        self._steps = steps
        self._intent = intent
        self._step = step
        self._hand_back = hand_back
        self._priority = Priority.ENTRY if step.kind == "entry" else Priority.PROTECT
        self._permitted_ns = 0

    async def permit(self) -> None:
        with span("permit wait", {"phalanx.login_id": self._intent.login_id}):
            await self._steps._checks.permit_before_deadline(
                self._intent, self._step, self._priority, self._hand_back
            )
        self._permitted_ns = self._steps._clock.time_ns()

    async def may_send(self) -> bool:
        steps, intent = self._steps, self._intent
        await steps._still_owner(intent)
        steps._checks.token_still_fresh(intent, self._step, self._hand_back)
        if steps._checks.permit_went_stale(intent, self._step, self._permitted_ns):
            return False  # ADR-0062: the old permit still counts; this request takes another
        steps.sent_ns[intent.intent_id] = steps._clock.time_ns()
        return True

    def refused(self, exc: tv_errors.TradovateError) -> None:
        if isinstance(exc, tv_errors.LockoutError) and self._hand_back:
            # ADR-0111: the venue did not handle it (or it was never sent: the socket knows
            # the lockout); the login is blocked for the lockout, so the intent goes back and
            # is tried again once the lockout is over, within its deadline
            raise HandBack(f"{self._step.kind} not sent: the login is locked out") from exc

    def penalties_did_not_end(self) -> Exception:
        return RefusedStep("venue-penalty", "penalties did not end")

    async def passing_refusal(self, verdict: Verdict, tries: int) -> None:
        # ADR-0055: refused for a passing reason; nothing was placed: a few more tries with a
        # back-off, then the broker's reason is final.
        if tries >= _MAX_REFUSALS:
            raise RefusedStep(verdict.reason, f"{verdict.text} ({tries} tries)")
        await self._steps._clock.sleep(0.5 * 2**tries)


def _after_venue_error(
    exc: tv_errors.TradovateError, sent_any: bool, lockout_s: float
) -> Exception:
    """ADR-0055: one table says what each venue error means for the intent."""
    verdict = classify(exc, lockout_s=lockout_s)
    if verdict.cls is ErrorClass.FINAL:
        return RefusedStep(verdict.reason, verdict.text)
    if verdict.cls is ErrorClass.RETRYABLE and not sent_any:
        return NotSent(str(exc))
    return Unknown(f"{type(exc).__name__}: {exc}")


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
