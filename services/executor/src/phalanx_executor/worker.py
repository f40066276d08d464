"""Shard worker: executes a batch of intents, each at most once (ADR-0006).

For each intent: claim it (KV ``create``: a second claim loses), take a permit from the shared
budget of its login (and egress IP), send one ``placeOSO`` on the login's socket, record the
outcome in the claim and publish it. A claim found already in place means another delivery
got there first: a terminal claim is skipped; a non-terminal one is an unknown outcome and is
never resent blindly. The batch is acked when every intent is terminal; an intent that could
not be attempted (login not ready) releases its claim and the batch is redelivered later.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import msgspec
from nats.aio.msg import Msg
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.codec import decode, encode
from phalanx_common.errors import Poison, Retry
from phalanx_common.events import (
    AnyEvent,
    ExecBatch,
    OrderAccepted,
    OrderIntent,
    OrderOutcomeUnknown,
    OrderRejected,
    VenueAction,
)
from phalanx_common.records import IntentRecord, IntentState
from phalanx_executor.pool import ConnectionPool, LoginNotReady
from phalanx_executor.ratelimit import Budget, RateLimiter, Window
from phalanx_executor.venue_events import VenueEventSink
from phalanx_tradovate import errors as tv_errors
from phalanx_tradovate import wire
from phalanx_tradovate.ws import TradovateSocket

__all__ = ["BatchWorker", "IntentOutcome"]

log = logging.getLogger(__name__)

TERMINAL: frozenset[IntentState] = frozenset({"accepted", "rejected", "unknown"})


@dataclass(frozen=True)
class IntentOutcome:
    """What happened to one intent in this delivery."""

    intent_id: str
    state: str  # accepted | rejected | unknown | duplicate | not-ready


class BatchWorker:
    """Executes :class:`ExecBatch` messages for the shards this replica owns."""

    def __init__(
        self,
        *,
        bus: Bus,
        intents: KeyValue,
        pool: ConnectionPool,
        limiter: RateLimiter,
        sink: VenueEventSink,
        clock: Clock,
        owner: str,
        login_windows: tuple[tuple[int, int], ...],
        ip_windows: tuple[tuple[int, int], ...],
        egress_ip: str,
    ) -> None:
        self._bus = bus
        self._intents = intents
        self._pool = pool
        self._limiter = limiter
        self._sink = sink
        self._clock = clock
        self._owner = owner
        self._login_windows = tuple(Window(n, s) for n, s in login_windows)
        self._ip_budget = (
            Budget(f"ip:{egress_ip}", tuple(Window(n, s) for n, s in ip_windows))
            if ip_windows
            else None
        )
        self.placed = 0

    def budgets(self, login_id: str) -> list[Budget]:
        """The budgets one order of ``login_id`` spends."""
        budgets = [Budget(f"login:{login_id}", self._login_windows)]
        if self._ip_budget is not None:
            budgets.append(self._ip_budget)
        return budgets

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        """Bus handler for one batch message."""
        if not isinstance(event, ExecBatch):
            raise Poison(f"unexpected {type(event).__name__} on an exec subject")
        # Every intent runs to its end before the batch is acked or nak'ed, so a redelivery
        # never races an attempt still in flight.
        results = await asyncio.gather(
            *(self.execute(i) for i in event.intents), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        for exc in failed:
            log.error("batch %s: intent failed before sending: %r", event.batch_id, exc)
        waiting = [r for r in results if isinstance(r, IntentOutcome) and r.state == "not-ready"]
        if failed or waiting:
            raise Retry(
                f"{len(waiting)} intents waiting for their login, {len(failed)} failed",
                delay_s=2.0,
            )

    async def execute(self, intent: OrderIntent) -> IntentOutcome:
        """Run one intent to a terminal outcome (or release it if it cannot start)."""
        claim = IntentRecord(intent_id=intent.intent_id, state="claimed", owner=self._owner)
        try:
            revision = await self._intents.create(intent.intent_id, encode(claim))
        except KeyWrongLastSequenceError:
            return await self._already_claimed(intent)

        try:
            sock = await self._pool.get(intent.login_id)
            await self._limiter.acquire(self.budgets(intent.login_id))
        except LoginNotReady as exc:
            log.info("intent %s: %s; released for redelivery", intent.intent_id, exc)
            await self._intents.delete(intent.intent_id, last=revision)
            return IntentOutcome(intent.intent_id, "not-ready")
        except BaseException:
            # Nothing was sent (no socket or no permit, e.g. Redis down: fail closed), so the
            # claim is released and a redelivery may try again.
            await self._intents.delete(intent.intent_id, last=revision)
            raise
        sent_ns = self._clock.time_ns()
        try:
            result = await self._send(sock, intent)
        except tv_errors.OrderRejected as exc:
            return await self._finish_rejected(
                intent, revision, exc.failure_reason, exc.failure_text
            )
        except tv_errors.PenaltyError as exc:
            # ADR-0004: the whole login waits p-time; the retry carries the ticket.
            await self._limiter.block(self.budgets(intent.login_id)[0], exc.time_s)
            if exc.captcha:
                return await self._finish_rejected(intent, revision, "penalty-captcha", str(exc))
            await self._limiter.acquire(self.budgets(intent.login_id))
            try:
                result = await self._send(sock, intent, p_ticket=exc.ticket)
            except tv_errors.TradovateError as again:
                return await self._finish_unknown_or_rejected(intent, revision, again)
        except tv_errors.LockoutError as exc:
            await self._limiter.block(self.budgets(intent.login_id)[0], 3600)
            return await self._finish_rejected(intent, revision, "venue-lockout", str(exc))
        except tv_errors.TradovateError as exc:
            return await self._finish_unknown_or_rejected(intent, revision, exc)

        self.placed += 1
        order_id, oso1_id, oso2_id = result
        for placed_id in result:
            self._sink.remember_order(placed_id, intent.account_id)
        await self._intents.update(
            intent.intent_id,
            encode(
                IntentRecord(
                    intent_id=intent.intent_id,
                    state="accepted",
                    owner=self._owner,
                    order_id=order_id,
                )
            ),
            last=revision,
        )
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.orders_subject(intent.account_id),
            OrderAccepted(
                event_id=ids.new_event_id(),
                ts_event=now,
                ts_init=now,
                intent_id=intent.intent_id,
                signal_id=intent.signal_id,
                strategy_id=intent.strategy_id,
                account_id=intent.account_id,
                login_id=intent.login_id,
                symbol=intent.symbol,
                order_id=order_id or 0,
                oso1_id=oso1_id,
                oso2_id=oso2_id,
                sent_ns=sent_ns,
            ),
            msg_id=f"accepted-{intent.intent_id}",
        )
        return IntentOutcome(intent.intent_id, "accepted")

    async def _send(
        self, sock: TradovateSocket, intent: OrderIntent, p_ticket: str | None = None
    ) -> tuple[int | None, int | None, int | None]:
        """One venue call: ``placeOSO`` with the bracket, or ``placeorder`` when it has none."""
        if intent.kind != "entry":
            raise tv_errors.OrderRejected("Unsupported", f"{intent.kind} is not in the foundation")
        exit_action: VenueAction = "Sell" if intent.action == "Buy" else "Buy"
        legs = []
        if intent.take_profit is not None:
            legs.append(
                wire.RestrainedOrderVersion(
                    action=exit_action, orderType="Limit", price=intent.take_profit
                )
            )
        if intent.stop_loss is not None:
            legs.append(
                wire.RestrainedOrderVersion(
                    action=exit_action, orderType="Stop", stopPrice=intent.stop_loss
                )
            )
        base = wire.PlaceOrder(
            accountSpec=intent.account_spec,
            accountId=intent.account_id,
            action=intent.action,
            symbol=intent.symbol,
            orderQty=intent.quantity,
            orderType=intent.order_type,
            price=intent.limit_price,
            stopPrice=intent.stop_price,
            clOrdId=intent.intent_id,
            isAutomated=True,
        )
        if not legs:
            single = await sock.place_order(base, p_ticket=p_ticket)
            return single.orderId, None, None
        oso = await sock.place_oso(
            wire.PlaceOso(
                **msgspec.structs.asdict(base),
                bracket1=legs[0],
                bracket2=legs[1] if len(legs) > 1 else None,
            ),
            p_ticket=p_ticket,
        )
        return oso.orderId, oso.oso1Id, oso.oso2Id

    async def _already_claimed(self, intent: OrderIntent) -> IntentOutcome:
        entry = await self._intents.get(intent.intent_id)
        record = decode(entry.value or b"{}", IntentRecord)
        if record.state in TERMINAL:
            return IntentOutcome(intent.intent_id, "duplicate")
        # Claimed but never finished: the claimant may have sent it. Never resend blindly.
        await self._publish_unknown(intent, f"claimed by {record.owner} without an outcome")
        await self._intents.update(
            intent.intent_id,
            encode(
                IntentRecord(
                    intent_id=intent.intent_id,
                    state="unknown",
                    owner=self._owner,
                    reason="claim-without-outcome",
                )
            ),
            last=entry.revision,
        )
        return IntentOutcome(intent.intent_id, "unknown")

    async def _finish_unknown_or_rejected(
        self, intent: OrderIntent, revision: int, exc: tv_errors.TradovateError
    ) -> IntentOutcome:
        if isinstance(exc, tv_errors.OrderRejected):
            return await self._finish_rejected(
                intent, revision, exc.failure_reason, exc.failure_text
            )
        if exc.retry_safe:
            return await self._finish_rejected(intent, revision, type(exc).__name__, str(exc))
        await self._publish_unknown(intent, str(exc))
        await self._intents.update(
            intent.intent_id,
            encode(
                IntentRecord(
                    intent_id=intent.intent_id, state="unknown", owner=self._owner, reason=str(exc)
                )
            ),
            last=revision,
        )
        return IntentOutcome(intent.intent_id, "unknown")

    async def _finish_rejected(
        self, intent: OrderIntent, revision: int, reason: str, text: str
    ) -> IntentOutcome:
        await self._intents.update(
            intent.intent_id,
            encode(
                IntentRecord(
                    intent_id=intent.intent_id, state="rejected", owner=self._owner, reason=reason
                )
            ),
            last=revision,
        )
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.orders_subject(intent.account_id),
            OrderRejected(
                event_id=ids.new_event_id(),
                ts_event=now,
                ts_init=now,
                intent_id=intent.intent_id,
                signal_id=intent.signal_id,
                strategy_id=intent.strategy_id,
                account_id=intent.account_id,
                login_id=intent.login_id,
                reason=reason,
                text=text,
            ),
            msg_id=f"rejected-{intent.intent_id}",
        )
        return IntentOutcome(intent.intent_id, "rejected")

    async def _publish_unknown(self, intent: OrderIntent, reason: str) -> None:
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.orders_subject(intent.account_id),
            OrderOutcomeUnknown(
                event_id=ids.new_event_id(),
                ts_event=now,
                ts_init=now,
                intent_id=intent.intent_id,
                signal_id=intent.signal_id,
                strategy_id=intent.strategy_id,
                account_id=intent.account_id,
                login_id=intent.login_id,
                reason=reason,
            ),
            msg_id=f"unknown-{intent.intent_id}",
        )
