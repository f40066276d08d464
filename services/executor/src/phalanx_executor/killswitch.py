"""The kill switch: halt everything, cancel every working order, flatten every position.

Engaging it (``POST /admin/kill-switch`` on any replica) writes ``global = HALTED`` to the
trading-state bucket (so nothing new is sent anywhere) and publishes ``KillSwitchEngaged``.
Every replica follows it through its own durable consumer and flattens the accounts of the
shards it owns: ``liquidateposition`` for each contract with a position (it also cancels that
contract's working orders), ``cancelorder`` for working orders of flat contracts. Requests take
permits at the highest priority, and a penalty or lockout the venue answers blocks the login like
any other request (venue_calls.py, ADR-0056). Each replica reports ``FlattenCompleted`` with its
counts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from nats.aio.msg import Msg

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import AnyEvent, FlattenCompleted, KillSwitchEngaged
from phalanx_common.records import AccountRecord
from phalanx_executor.permits import Priority
from phalanx_executor.pool import ConnectionPool, LoginNotReady
from phalanx_executor.venue_calls import VenueCalls
from phalanx_executor.venue_view import VenueView
from phalanx_tradovate import TradovateSocket, wire
from phalanx_tradovate.errors import TradovateError

__all__ = ["Flattener"]

log = logging.getLogger(__name__)


class Flattener:
    """Flattens the accounts this replica owns when the kill switch is engaged."""

    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        pool: ConnectionPool,
        view: VenueView,
        calls: VenueCalls,
        owned_accounts: Callable[[], list[AccountRecord]],
        owner: str,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._pool = pool
        self._view = view
        self._calls = calls
        self._owned_accounts = owned_accounts
        self._owner = owner

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        """Bus handler for ``KillSwitchEngaged`` (other control events are ignored)."""
        if not isinstance(event, KillSwitchEngaged):
            return
        log.warning("kill switch engaged (%s): flattening owned accounts", event.reason)
        cancelled, liquidated, failed = await self.flatten()
        now = self._clock.time_ns()
        await self._bus.publish(
            subjects.CONTROL_FLATTENED,
            FlattenCompleted(
                event_id=ids.new_event_id(),
                ts_event=now,
                ts_init=now,
                kill_event_id=event.event_id,
                owner=self._owner,
                accounts=len(self._owned_accounts()),
                cancelled=cancelled,
                liquidated=liquidated,
                failed=failed,
            ),
            msg_id=f"flattened-{event.event_id}-{self._owner}",
        )

    async def flatten(self) -> tuple[int, int, int]:
        """Cancel and liquidate everything of the owned accounts; return the counts."""
        by_login: dict[str, list[AccountRecord]] = {}
        for account in self._owned_accounts():
            by_login.setdefault(account.login_id, []).append(account)
        results = await asyncio.gather(
            *(self._flatten_login(login, accts) for login, accts in by_login.items())
        )
        return (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            sum(r[2] for r in results),
        )

    async def _flatten_login(
        self, login_id: str, accounts: list[AccountRecord]
    ) -> tuple[int, int, int]:
        cancelled = liquidated = failed = 0
        try:
            sock = await self._pool.get(login_id)
        except LoginNotReady as exc:
            log.error("kill switch: login %s unreachable: %s", login_id, exc)
            return 0, 0, len(accounts)
        for account in accounts:
            for contract_id in sorted(self._view.open_contracts(account.account_id)):
                try:
                    if self._view.position(account.account_id, contract_id) != 0:
                        liquidate = wire.LiquidatePosition(
                            accountId=account.account_id, contractId=contract_id
                        )
                        await self._calls.call(
                            login_id,
                            functools.partial(_liquidate, sock, liquidate),
                            priority=Priority.PROTECT,
                        )
                        liquidated += 1
                        continue
                    for order in self._view.working_orders(account.account_id, contract_id):
                        await self._calls.call(
                            login_id,
                            functools.partial(_cancel, sock, order.id),
                            priority=Priority.PROTECT,
                        )
                        cancelled += 1
                except TradovateError as exc:
                    failed += 1
                    log.error(
                        "kill switch: account %s contract %s: %s",
                        account.account_id,
                        contract_id,
                        exc,
                    )
        return cancelled, liquidated, failed


async def _liquidate(
    sock: TradovateSocket, req: wire.LiquidatePosition, ticket: str | None
) -> wire.PlaceOrderResult:
    return await sock.liquidate_position(req, p_ticket=ticket)


async def _cancel(sock: TradovateSocket, order_id: int, ticket: str | None) -> wire.CommandResult:
    return await sock.cancel_order(wire.CancelOrder(orderId=order_id), p_ticket=ticket)
