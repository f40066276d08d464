"""Reconciliation with the broker, on a schedule and on demand (ADR-0125).

For one account (its login from the ``accounts`` bucket):

1. ``position/deps`` (the broker's positions). If every contract equals the ledger's book, the
   account is ``ok`` — one request per account and period.
2. Otherwise (or when asked to fetch fills): the account's fills (``order/deps`` +
   ``fill/ldeps``), then ``position/deps`` again. Two different position answers mean the
   account traded during the check: ``unknown``, looked at again next period.
3. The broker fills the ledger lacks are published on ``fills.<account>`` (``reported_by``
   ``reconciliation``) and so recorded like any fill — attributed to ``outside`` unless an
   ``OrderAccepted`` names their order. A missing fill younger than ``reconcile_fill_grace_s``
   is left to the executor (probably on its way): the check says ``unknown``.
4. The ledger's book (read at that moment, with the fetched fills) is compared with the second
   answer (:mod:`phalanx_ledger.reconcile`). A ``drift`` publishes ``PositionDrift`` on
   ``control.drift.<account>`` with both sides and, with ``reduce_on_drift``, switches the
   account to REDUCING.
5. When the broker answered: the commissions and fees of the account's fills that have none
   yet (``fillFee/ldeps``) are published as ``FillFees`` on ``fills.fees.<account>``
   (ADR-0127).

A failed or missing broker report is ``unknown`` with its reason: no drift is claimed and no
position is taken as flat. The latest outcome per account is kept for ``GET /admin/drift``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import FillReceived, PositionDrift
from phalanx_common.records import AccountRecord
from phalanx_common.tasks import OwnedTasks
from phalanx_ledger.broker import Broker, BrokerUnavailable
from phalanx_ledger.fees import fill_fees
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.reconcile import Reconciliation, broker_positions, compare, unknown
from phalanx_ledger.reducing import reduce_account
from phalanx_tradovate import wire

__all__ = ["FEE_TRIES", "REPORTED_BY", "Reconciler"]

log = logging.getLogger(__name__)

#: ``FillReceived.reported_by`` of fills the ledger fetched from the broker
REPORTED_BY = "reconciliation"
#: rounds in which a fill's fees are asked for before they count as not reported
FEE_TRIES = 5


def _ns(timestamp: str | None) -> int:
    """Tradovate's ISO time in ns since the epoch (0 when absent or unreadable)."""
    if not timestamp:
        return 0
    try:
        moment = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


class Reconciler:
    """Checks accounts against the broker and keeps the latest outcome of each.

    Args:
        bus: Where fetched fills, drift reports and trading-state changes are published.
        projection: The ledger's book (read only; fetched fills reach it through FILLS).
        broker: Per-account reads of the venue.
        accounts: The accounts to check (the active records of the ``accounts`` bucket).
        clock: Time of each check.
        ready: Whether the ledger's replay is done (an unfinished book is not compared).
        interval_s: Period of the scheduled check (0: on demand only).
        fill_grace_s: See the module docstring.
        concurrency: Accounts checked at once.
        reduce_on_drift: Switch a drifted account to REDUCING.
    """

    def __init__(
        self,
        *,
        bus: Bus,
        projection: PositionsProjection,
        broker: Broker,
        accounts: Callable[[], Iterable[AccountRecord]],
        clock: Clock,
        ready: Callable[[], bool],
        interval_s: float = 300.0,
        fill_grace_s: float = 10.0,
        concurrency: int = 4,
        reduce_on_drift: bool = False,
    ) -> None:
        self._bus = bus
        self._projection = projection
        self._broker = broker
        self._accounts = accounts
        self._clock = clock
        self._ready = ready
        self.interval_s = interval_s
        self._grace_ns = int(fill_grace_s * 1e9)
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self.reduce_on_drift = reduce_on_drift
        self.latest: dict[int, Reconciliation] = {}
        self.rounds = 0
        self.fetched_fills = 0
        self.drift_reports = 0
        self.fetched_fees = 0
        self._fee_tries: dict[int, int] = {}
        self._tasks = OwnedTasks("ledger-reconciler")

    def start(self) -> None:
        """Start the scheduled checks (none when ``interval_s`` is 0)."""
        if self.interval_s > 0 and not self._tasks:
            self._tasks.spawn(self._run(), "ledger-reconciler")

    async def stop(self) -> None:
        """Stop the scheduled checks (idempotent)."""
        await self._tasks.stop()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self.interval_s)
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciliation round failed")

    def active_accounts(self) -> list[AccountRecord]:
        """The accounts a round checks: every active account record."""
        return [a for a in self._accounts() if a.active]

    async def reconcile(
        self, account_ids: Sequence[int] | None = None, *, fetch_fills: bool = False
    ) -> list[Reconciliation]:
        """Check the given accounts (default: every active one) now; return the outcomes.

        An id without an active account record is ``unknown`` (no login to ask with).
        """
        known = {a.account_id: a for a in self.active_accounts()}
        wanted = sorted(known) if account_ids is None else list(dict.fromkeys(account_ids))
        outcomes = await asyncio.gather(
            *(self._one(account_id, known.get(account_id), fetch_fills) for account_id in wanted)
        )
        self.rounds += 1
        return list(outcomes)

    async def _one(
        self, account_id: int, account: AccountRecord | None, fetch_fills: bool
    ) -> Reconciliation:
        async with self._limit:
            if account is None:
                outcome = unknown(
                    account_id, "", self._clock.time_ns(), "no active account record (no login)"
                )
            else:
                try:
                    outcome = await self._check(account, fetch_fills)
                except BrokerUnavailable as exc:
                    outcome = unknown(
                        account_id, account.login_id, self._clock.time_ns(), f"broker: {exc}"
                    )
                except Exception as exc:  # a publish that failed: nothing claimed, next period
                    log.exception("account %s: reconciliation failed", account_id)
                    outcome = unknown(
                        account_id,
                        account.login_id,
                        self._clock.time_ns(),
                        f"reconciliation failed: {type(exc).__name__}",
                    )
            self.latest[account_id] = outcome
            if account is not None and outcome.status != "unknown":
                try:
                    await self._collect_fees(account)
                except Exception:  # fees come again next round; the outcome stands
                    log.exception("account %s: fees not recorded", account_id)
        if outcome.status == "unknown":
            log.warning("account %s: reconciliation unknown: %s", account_id, outcome.reason)
        return outcome

    async def _check(self, account: AccountRecord, fetch_fills: bool) -> Reconciliation:
        account_id, login_id = account.account_id, account.login_id
        if not self._ready():
            return unknown(account_id, login_id, self._clock.time_ns(), "ledger still replaying")
        first = await self._broker.positions(account)
        quick = compare(
            account_id,
            login_id,
            self._projection.positions(account_id),
            first,
            (),
            {},
            self._clock.time_ns(),
        )
        if quick.status == "ok" and not fetch_fills:
            return quick
        fills = await self._broker.fills(account)
        second = await self._broker.positions(account)
        if broker_positions(first) != broker_positions(second):
            return unknown(
                account_id, login_id, self._clock.time_ns(), "the account traded during the check"
            )
        names: dict[int, str] = {}
        own = {p.contract_id for p in self._projection.positions(account_id)}
        unnamed = {f.contractId for f in fills if not self._projection.knows_fill(f.id)}
        unnamed |= {p.contractId for p in second if p.netPos and p.contractId not in own}
        for contract_id in sorted(c for c in unnamed if c is not None):
            names[contract_id] = await self._broker.contract_name(account, contract_id)
        now = self._clock.time_ns()
        # From here to the comparison nothing awaits: the book and the fills seen agree.
        missing = [f for f in fills if not self._projection.knows_fill(f.id)]
        recent = [f for f in missing if self._grace_ns and now - _ns(f.timestamp) < self._grace_ns]
        fetched = [
            event
            for event in (self._fill_event(account_id, f, names, now) for f in missing)
            if event is not None
        ]
        outcome = compare(
            account_id,
            login_id,
            self._projection.positions(account_id),
            second,
            fetched,
            names,
            now,
        )
        if recent:
            return unknown(
                account_id,
                login_id,
                now,
                f"{len(recent)} recent fill(s) not yet in the ledger; checked again next period",
            )
        await self._record(fetched)
        if outcome.status == "drift":
            await self._report(outcome)
        return outcome

    @staticmethod
    def _fill_event(
        account_id: int, fill: wire.Fill, names: dict[int, str], now_ns: int
    ) -> FillReceived | None:
        if (
            fill.orderId is None
            or fill.contractId is None
            or fill.action is None
            or not fill.qty
            or fill.price is None
        ):
            log.warning("account %s: broker fill %s is incomplete; skipped", account_id, fill.id)
            return None
        ts = _ns(fill.timestamp) or now_ns
        return FillReceived(
            event_id=f"fill-{fill.id}-reconciled",
            ts_event=ts,
            ts_init=now_ns,
            fill_id=fill.id,
            order_id=fill.orderId,
            account_id=account_id,
            contract_id=fill.contractId,
            symbol=names.get(fill.contractId, ""),
            action=fill.action,
            qty=int(fill.qty),
            price=fill.price,
            venue_timestamp=fill.timestamp or "",
            reported_by=REPORTED_BY,
        )

    async def _record(self, fetched: Sequence[FillReceived]) -> None:
        for event in fetched:
            await self._bus.publish(subjects.fills_subject(event.account_id), event)
            self.fetched_fills += 1
            log.info(
                "account %s: recorded broker fill %s the ledger lacked (order %s)",
                event.account_id,
                event.fill_id,
                event.order_id,
            )

    async def _collect_fees(self, account: AccountRecord) -> None:
        """Fetch and record the venue's fees of the account's fills that have none yet.

        A fill is asked about in at most ``FEE_TRIES`` rounds (its fee may come late); then
        its fees stay unreported (``fills_without_fees`` in P&L). A failure here changes
        nothing of the positions' outcome.
        """
        pending = [
            fill_id
            for fill_id in self._projection.fills_without_fees(account.account_id)
            if self._fee_tries.get(fill_id, 0) < FEE_TRIES
        ]
        if not pending:
            return
        try:
            found = await self._broker.fill_fees(account, pending)
        except BrokerUnavailable as exc:
            log.warning("account %s: fees not fetched: %s", account.account_id, exc)
            return
        for fill_id in pending:
            self._fee_tries[fill_id] = self._fee_tries.get(fill_id, 0) + 1
        now = self._clock.time_ns()
        for fee in found:
            event = fill_fees(account.account_id, fee, now)
            await self._bus.publish(subjects.fill_fees_subject(account.account_id), event)
            self._fee_tries.pop(fee.id, None)
            self.fetched_fees += 1

    async def _report(self, outcome: Reconciliation) -> None:
        reduced = False
        if self.reduce_on_drift:
            sides = ", ".join(
                f"{c.symbol or c.contract_id}: ledger {c.ledger_net_pos} broker {c.broker_net_pos}"
                for c in outcome.drifted
            )
            reduced = await reduce_account(
                self._bus, outcome.account_id, f"position drift ({sides})", outcome.checked_ns
            )
        event = PositionDrift(
            event_id=ids.new_event_id(),
            ts_event=outcome.checked_ns,
            ts_init=self._clock.time_ns(),
            account_id=outcome.account_id,
            login_id=outcome.login_id,
            contracts=tuple(c.row() for c in outcome.drifted),
            fetched_fills=outcome.fetched_fills,
            explained=outcome.explained,
            reduced=reduced,
        )
        await self._bus.publish(subjects.drift_subject(outcome.account_id), event)
        self.drift_reports += 1
        log.warning(
            "account %s: position drift (%s): %s",
            outcome.account_id,
            "explained by fetched fills" if outcome.explained else "unexplained",
            [(c.symbol, c.ledger_net_pos, c.broker_net_pos) for c in outcome.drifted],
        )
