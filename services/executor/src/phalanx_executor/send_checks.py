"""What must hold just before an intent's request goes out: a permit, in time, on a live token.

- the permit comes before the signal's deadline, and — while nothing of the intent was sent —
  within ``permit_handback_s`` and before the replica stops, or the intent goes back (ADR-0050);
- the request goes within ``permit_max_age_s`` of its permit, or takes another (ADR-0062);
- the login's token is not about to expire (ADR-0110).

The claim-ownership check (ADR-0050) is the worker's own (:meth:`BatchWorker._still_owner`).
"""

from __future__ import annotations

import asyncio
import logging

from phalanx_common.clock import Clock
from phalanx_common.events import OrderIntent
from phalanx_executor.budgets import BudgetBook
from phalanx_executor.decisions import Step
from phalanx_executor.permits import Permits, Priority
from phalanx_executor.pool import ConnectionPool
from phalanx_executor.step_errors import Expired, HandBack, RefusedStep
from phalanx_executor.worker_settings import WorkerSettings

__all__ = ["SendChecks"]

log = logging.getLogger(__name__)


class SendChecks:
    """Permit waits bounded by deadline, hand-back and stop; staleness and token checks."""

    def __init__(
        self,
        permits: Permits,
        budgets: BudgetBook,
        pool: ConnectionPool,
        clock: Clock,
        settings: WorkerSettings,
    ) -> None:
        self._permits = permits
        self._budgets = budgets
        self._pool = pool
        self._clock = clock
        self._s = settings
        self.stopping = asyncio.Event()
        self._stopped: asyncio.Future[None] | None = None  # done once stopping (shared waiter)

    def begin_stop(self) -> None:
        """From now on, permit waits of intents with nothing sent hand them back."""
        self.stopping.set()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def _stop_signal(self) -> asyncio.Future[None]:
        """One future for every permit wait to watch for the stop (not a task per wait)."""
        if self._stopped is None:
            self._stopped = asyncio.get_running_loop().create_future()
            if self.stopping.is_set():
                self._stopped.set_result(None)
        return self._stopped

    def past_deadline(self, intent: OrderIntent) -> bool:
        """Whether the intent's signal is past its deadline."""
        return bool(intent.not_after_ns) and self._clock.time_ns() > intent.not_after_ns

    def token_still_fresh(self, intent: OrderIntent, step: Step, hand_back: bool) -> None:
        """Just before a send: the socket's token is not about to expire (ADR-0110).

        A permit wait can outlast a token whose renewal failed; nothing goes out on it.

        Raises:
            HandBack: nothing of the intent was sent yet: it goes back and waits for a token.
            RefusedStep: earlier steps were sent; the rest is not, and the intent says why.
        """
        if self._pool.token_fresh(intent.login_id):
            return
        text = f"{step.kind} not sent: the login's token expired or is about to"
        if hand_back:
            raise HandBack(text)
        raise RefusedStep("token-expired", text)

    def permit_went_stale(self, intent: OrderIntent, step: Step, permitted_ns: int) -> bool:
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
        self._permits.metrics.stale_permit(intent.login_id)
        return True

    async def permit_before_deadline(
        self, intent: OrderIntent, step: Step, priority: Priority, hand_back: bool = False
    ) -> None:
        """Take a permit, but never send after the signal's deadline: the wait for a permit
        (a budget-bound login can wait minutes) ends at the deadline, and the deadline is checked
        again once the permit is in hand, just before the request goes out.

        With ``hand_back`` (nothing of the intent was sent yet), the wait also ends when the
        replica stops or after ``permit_handback_s``: :class:`HandBack` (ADR-0050)."""
        remaining_s: float | None = None
        if intent.not_after_ns:
            remaining_s = (intent.not_after_ns - self._clock.time_ns()) / 1e9
            if remaining_s <= 0:
                raise Expired(f"{step.kind} not sent: past the signal's deadline")
        limit_s = remaining_s
        handback_s = self._s.permit_handback_s if hand_back else 0.0
        if handback_s > 0 and (limit_s is None or handback_s < limit_s):
            limit_s = handback_s
        budgets = self._budgets.for_login(intent.login_id)
        acquire = asyncio.ensure_future(self._permits.acquire(budgets, priority))
        stop = self._stop_signal() if hand_back else None
        try:
            await asyncio.wait(
                {acquire} if stop is None else {acquire, stop},
                timeout=limit_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not acquire.done():
                # Not awaited: a cancel that lands inside a Redis call can be swallowed there,
                # and the wait would then last until the permit came. A permit granted after
                # this point is simply not used.
                acquire.cancel()
                acquire.add_done_callback(_consume_result)
        if not acquire.cancelled() and acquire.done():
            acquire.result()  # raises what the limiter raised (e.g. Redis down)
            if self.past_deadline(intent):
                raise Expired(f"{step.kind} not sent: the permit came after the deadline")
            return
        if self.stopping.is_set() and hand_back:
            raise HandBack(f"{step.kind} not sent: the replica is stopping")
        if limit_s is not None and limit_s == remaining_s:
            raise Expired(
                f"{step.kind} not sent: no permit of the login's budget before the deadline"
            )
        raise HandBack(f"{step.kind} not sent: no permit of the login's budget within {limit_s}s")


def _consume_result(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned permit wait's outcome so it is never reported as unretrieved."""
    if not task.cancelled():
        task.exception()
