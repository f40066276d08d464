"""``user/syncrequest`` snapshots: what a session sees at once, and what it subscribes to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from phalanx_sim.schemas import SyncRequestBody
from phalanx_sim.state import AccountBook, Session
from phalanx_sim.venue_core import VenueCore

__all__ = ["SNAPSHOT_KEYS", "Subscription", "build_snapshot"]

#: entityType (as in ``entityTypes`` and props events) → key of the syncrequest snapshot.
SNAPSHOT_KEYS: dict[str, str] = {
    "user": "users",
    "account": "accounts",
    "accountRiskStatus": "accountRiskStatuses",
    "marginSnapshot": "marginSnapshots",
    "userAccountAutoLiq": "userAccountAutoLiqs",
    "cashBalance": "cashBalances",
    "currency": "currencies",
    "position": "positions",
    "fillPair": "fillPairs",
    "order": "orders",
    "contract": "contracts",
    "contractMaturity": "contractMaturities",
    "product": "products",
    "exchange": "exchanges",
    "spreadDefinition": "spreadDefinitions",
    "command": "commands",
    "commandReport": "commandReports",
    "executionReport": "executionReports",
    "orderVersion": "orderVersions",
    "fill": "fills",
    "orderStrategy": "orderStrategies",
    "orderStrategyLink": "orderStrategyLinks",
    "orderStrategyType": "orderStrategyTypes",
    "userProperty": "userProperties",
    "property": "properties",
    "userPlugin": "userPlugins",
    "contractGroup": "contractGroups",
    "userReadStatus": "userReadStatuses",
}
_SNAPSHOT_KEYS_LOWER = {name.lower(): name for name in SNAPSHOT_KEYS}


class Subscription(NamedTuple):
    """What a ``user/syncrequest`` subscribed a socket to."""

    account_ids: tuple[int, ...]
    entity_types: frozenset[str] | None


def build_snapshot(
    venue: VenueCore, session: Session, body: SyncRequestBody
) -> tuple[dict[str, list[Any]], Subscription]:
    """Build a ``user/syncrequest`` snapshot and the subscription it implies."""
    record = venue.user_of(session)
    account_ids = _subscribed_accounts(record.account_ids, session, body)
    types = _entity_types(venue, body)
    snapshot = _Snapshot(types)
    snapshot.add("user", [record.user])
    contract_ids: set[int] = set()
    for account_id in account_ids:
        contract_ids |= snapshot.add_book(venue.state.books[account_id])
    infos = [i for i in (venue.contracts.by_id(c) for c in sorted(contract_ids)) if i]
    snapshot.add("contract", (i.contract for i in infos))
    snapshot.add("contractMaturity", (i.maturity for i in infos))
    snapshot.add("product", {i.product.id: i.product for i in infos}.values())
    return snapshot.data, Subscription(account_ids, types)


def _subscribed_accounts(
    own: Iterable[int], session: Session, body: SyncRequestBody
) -> tuple[int, ...]:
    """The session's accounts the request asks for (all of them when it names none)."""
    if body.accounts:
        wanted = set(body.accounts)
        account_ids = tuple(a for a in own if a in wanted)
    else:
        account_ids = tuple(own)
    if body.users is not None and body.users and session.user_id not in body.users:
        account_ids = tuple(a for a in account_ids if body.accounts and a in body.accounts)
    return account_ids


def _entity_types(venue: VenueCore, body: SyncRequestBody) -> frozenset[str] | None:
    """The entity types asked for, by their canonical names; ``None``: every type."""
    if body.entityTypes:
        return frozenset(
            _SNAPSHOT_KEYS_LOWER[t.lower()]
            for t in body.entityTypes
            if t.lower() in _SNAPSHOT_KEYS_LOWER
        )
    if venue.settings.sim_sync_require_entity_types:
        return frozenset()
    return None


class _Snapshot:
    """The snapshot's lists, one per wanted entity type."""

    def __init__(self, types: frozenset[str] | None) -> None:
        self.types = types
        keys = SNAPSHOT_KEYS if types is None else {t: SNAPSHOT_KEYS[t] for t in types}
        self.data: dict[str, list[Any]] = {key: [] for key in keys.values()}

    def add(self, entity_type: str, items: Iterable[Any]) -> None:
        """Append ``items`` when ``entity_type`` is wanted."""
        if self.types is None or entity_type in self.types:
            self.data[SNAPSHOT_KEYS[entity_type]].extend(items)

    def add_book(self, book: AccountBook) -> set[int]:
        """Add an account's entities; returns the contracts its positions and orders are in."""
        self.add("account", [book.account])
        self.add("cashBalance", [book.cash])
        self.add("position", book.positions.values())
        contract_ids = {position.contractId for position in book.positions.values()}
        for rec in book.orders.values():
            contract_ids.add(rec.order.contractId)
            self.add("order", [rec.order])
            self.add("orderVersion", rec.versions)
            self.add("fill", rec.fills)
            for crec in rec.commands:
                self.add("command", [crec.command])
                self.add("commandReport", crec.reports)
                self.add("executionReport", crec.executions)
        return contract_ids
