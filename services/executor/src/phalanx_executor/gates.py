"""Checks before anything is sent: trading state and per-account guards.

Trading state is ACTIVE, REDUCING (exits and cancels only) or HALTED (cancels only), set
globally, per strategy and per account; the most restrictive applies. Guards (per account):
``max_contracts`` caps the absolute position an entry may reach (the position it ends at: for
a reversal from -2 to +2 that is 2, not -2 + 4); ``daily_loss_limit`` stops entries once the
venue's realized P&L for the account is at or below minus the limit.

A reversal whose entry is refused by REDUCING or a guard still closes the opposite position
(its exit half) and records why the entry was not sent (ADR-0060); HALTED refuses both halves.
"""

from __future__ import annotations

from dataclasses import dataclass

from phalanx_common.events import OrderIntent
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountGuardRecord, TradingStateRecord
from phalanx_executor.decisions import Decision
from phalanx_executor.venue_view import VenueView

__all__ = ["Gates", "Refusal", "effective_state"]

_RANK = {"ACTIVE": 0, "REDUCING": 1, "HALTED": 2}


@dataclass(frozen=True)
class Refusal:
    """Why an intent may not be sent; ``reason`` is machine-readable."""

    reason: str
    text: str


def effective_state(states: KvMirror[TradingStateRecord], strategy_id: str, account_id: int) -> str:
    """The most restrictive of the global, strategy and account states (ACTIVE if unset)."""
    worst = "ACTIVE"
    for scope in ("global", f"strategy.{strategy_id}", f"account.{account_id}"):
        record = states.get(scope)
        if record is not None and _RANK[record.state] > _RANK[worst]:
            worst = record.state
    return worst


class Gates:
    """Trading-state and guard checks for intents."""

    def __init__(
        self,
        states: KvMirror[TradingStateRecord],
        guards: KvMirror[AccountGuardRecord],
        view: VenueView,
    ) -> None:
        self._states = states
        self._guards = guards
        self._view = view

    def apply(self, intent: OrderIntent, position: int, decision: Decision) -> Decision:
        """The decision that may go out: as decided, its exit half, or a refusal."""
        if decision.refused:
            return decision
        refusal = self.check(intent, position, decision.added, decision.resulting(position))
        if refusal is None:
            return decision
        if decision.reversal and refusal.reason != "trading-halted":
            return decision.exit_half(f"entry refused: {refusal.reason}: {refusal.text}")
        return Decision(refused=refusal.reason, text=refusal.text)

    def check(
        self, intent: OrderIntent, position: int, added: int, resulting: int | None = None
    ) -> Refusal | None:
        """Refuse ``intent`` if state or guards forbid it.

        Args:
            intent: what is about to be done.
            position: the account's signed position in the contract now.
            added: the signed contracts an entry would add (0 for exits and cancels).
            resulting: the signed position once done (default ``position + added``).
        """
        ends_at = position + added if resulting is None else resulting
        state = effective_state(self._states, intent.strategy_id, intent.account_id)
        if state == "HALTED" and intent.kind != "cancel":
            return Refusal("trading-halted", f"trading is HALTED for account {intent.account_id}")
        if state == "REDUCING" and intent.kind in ("entry", "add") and added != 0:
            return Refusal(
                "trading-reducing", f"trading is REDUCING (exits only) for {intent.account_id}"
            )
        if added == 0:
            return None
        guard = self._guards.get(str(intent.account_id))
        if guard is None:
            return None
        if guard.max_contracts is not None and abs(ends_at) > guard.max_contracts:
            return Refusal(
                "max-contracts",
                f"position would be {ends_at}, over the account's max of {guard.max_contracts}",
            )
        if guard.daily_loss_limit is not None:
            realized = self._view.realized_pnl(intent.account_id)
            if realized <= -guard.daily_loss_limit:
                return Refusal(
                    "daily-loss-limit",
                    f"realized P&L {realized} is at or past the daily loss limit "
                    f"{guard.daily_loss_limit}",
                )
        return None
