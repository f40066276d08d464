"""One way to make a venue request of a login: permit first, then honour what the venue says.

Every request the executor sends with a login's token (orders, lookups, syncs, the kill switch's
cancels and liquidations, the socket's ``authorize``) goes through :meth:`VenueCalls.call`: it
takes a permit from the request's budgets (ADR-0004), sends, and on a penalty blocks the login
for ``p-time`` and resends with the ticket, on HTTP 423/429 blocks the login for the lockout.
Blocks go through the limiter, so they hold back every waiter of the login at once and only ever
extend (ADR-0056). What an error means is :func:`phalanx_tradovate.classes.classify`'s table.
Each permit wait and each request is a span (ADR-0070).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from opentelemetry.trace import SpanKind

from phalanx_common.telemetry import SpanAttributes, span
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.permits import Permits, Priority
from phalanx_tradovate.classes import ErrorClass, Verdict, classify
from phalanx_tradovate.errors import OrderRejected, PenaltyError, TradovateError

__all__ = ["SendGuard", "VenueCalls"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class VenueCalls:
    """Permits, penalties and lockouts around every venue request of a login."""

    def __init__(
        self,
        permits: Permits,
        book: BudgetBook,
        *,
        lockout_s: float = 3600.0,
        max_penalties: int = 3,
    ) -> None:
        self.permits = permits
        self.book = book
        self.lockout_s = lockout_s
        self.max_penalties = max_penalties

    async def permit(
        self, login_id: str, priority: Priority = Priority.RECONCILE, endpoint: str = ""
    ) -> None:
        """Wait for a permit of every budget a request of ``login_id`` to ``endpoint`` spends."""
        with span("permit wait", {"phalanx.login_id": login_id, "phalanx.endpoint": endpoint}):
            await self.permits.acquire(self.book.for_request(login_id, endpoint), priority)

    async def blocked_for(self, login_id: str, endpoint: str = "") -> float:
        """Seconds a request of ``login_id`` to ``endpoint`` stays blocked (0: not blocked)."""
        waits = [await self.permits.blocked_for(b) for b in self.book.to_block(login_id, endpoint)]
        return max(waits, default=0.0)

    async def honour(self, login_id: str, exc: TradovateError, endpoint: str = "") -> None:
        """Block the login (and the endpoint's IP budget) as the venue's answer demands."""
        verdict = classify(exc, lockout_s=self.lockout_s)
        if verdict.block_s > 0:
            self.permits.metrics.blocked(login_id, verdict.reason)
            log.warning(
                "login %s: %s on %s; blocked for %.1fs",
                login_id,
                verdict.reason,
                endpoint or exc.endpoint,
                verdict.block_s,
            )
            for budget in self.book.to_block(login_id, endpoint or exc.endpoint):
                await self.permits.block(budget, verdict.block_s)

    async def call(
        self,
        login_id: str,
        send: Callable[[str | None], Awaitable[T]],
        *,
        priority: Priority = Priority.RECONCILE,
        endpoint: str = "",
        guard: SendGuard | None = None,
        name: str = "venue request",
        attributes: SpanAttributes | None = None,
    ) -> T:
        """``send(ticket)`` under a permit; after a penalty, again with its ticket (a few times).

        With a ``guard`` (an intent's step, :mod:`venue_steps`), the guard takes the permit and
        checks just before each send, may stop on a refusal, names the error when penalties do
        not end, and retries refusals for a passing reason. The span is ``name`` with
        ``attributes`` (default: the login and endpoint).

        Raises:
            TradovateError: what the venue answered, once honoured (penalties that did not end
                raise :class:`PenaltyError`, or the guard's error).
        """
        ticket: str | None = None
        penalties = refusals = 0
        while True:
            if guard is None:
                await self.permit(login_id, priority, endpoint)
            else:
                await guard.permit()
                if not await guard.may_send():
                    continue  # its permit went stale: take another (ADR-0062)
            base = attributes or {"phalanx.login_id": login_id, "phalanx.endpoint": endpoint}
            spanned: SpanAttributes = {**base, "phalanx.penalty_ticket": ticket is not None}
            try:
                with span(name, spanned, kind=SpanKind.CLIENT):
                    return await send(ticket)
            except TradovateError as exc:
                await self.honour(login_id, exc, endpoint)
                if guard is not None:
                    guard.refused(exc)
                verdict = classify(exc, lockout_s=self.lockout_s)
                if verdict.ticket is not None:
                    penalties += 1
                    if penalties >= self.max_penalties:
                        raise self._penalties_did_not_end(guard, verdict, endpoint) from exc
                    ticket = verdict.ticket
                    continue
                passing = verdict.cls is ErrorClass.RETRYABLE and isinstance(exc, OrderRejected)
                if guard is None or not passing:
                    raise
                refusals += 1
                await guard.passing_refusal(verdict, refusals)
                ticket = None

    @staticmethod
    def _penalties_did_not_end(
        guard: SendGuard | None, verdict: Verdict, endpoint: str
    ) -> Exception:
        if guard is not None:
            return guard.penalties_did_not_end()
        return PenaltyError(verdict.ticket or "", 0.0, endpoint=endpoint or "penalties did not end")


class SendGuard(Protocol):
    """The checks a caller makes around each send of one request (an intent's step)."""

    async def permit(self) -> None:
        """Take the request's permit (bounded by the caller's deadline and hand-back)."""

    async def may_send(self) -> bool:
        """Just before the send: raise to stop, or False to take another permit first."""

    def refused(self, exc: TradovateError) -> None:
        """The venue refused (honoured already): raise to stop at once."""

    def penalties_did_not_end(self) -> Exception:
        """The error to raise when penalties did not end."""

    async def passing_refusal(self, verdict: Verdict, tries: int) -> None:
        """A refusal for a passing reason, the ``tries``-th: back off, or raise to stop."""
