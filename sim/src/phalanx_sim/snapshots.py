"""``user/syncrequest`` snapshots: what a session sees at once, and what it subscribes to."""

from __future__ import annotations

from typing import Any, NamedTuple

from phalanx_sim.schemas import SyncRequestBody
from phalanx_sim.state import Session
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
    own = record.account_ids
    if body.accounts:
        wanted = set(body.accounts)
        account_ids = tuple(a for a in own if a in wanted)
    else:
        account_ids = tuple(own)
    if body.users is not None and body.users and session.user_id not in body.users:
        account_ids = tuple(a for a in account_ids if body.accounts and a in body.accounts)
    types: frozenset[str] | None
    if body.entityTypes:
        types = frozenset(
            _SNAPSHOT_KEYS_LOWER[t.lower()]
            for t in body.entityTypes
            if t.lower() in _SNAPSHOT_KEYS_LOWER
        )
    elif venue.settings.sim_sync_require_entity_types:
        types = frozenset()
    else:
        types = None
    keys = SNAPSHOT_KEYS if types is None else {t: SNAPSHOT_KEYS[t] for t in types}
    data: dict[str, list[Any]] = {key: [] for key in keys.values()}

    def want(entity_type: str) -> bool:
        return types is None or entity_type in types

    books = [venue.state.books[a] for a in account_ids]
    if want("user"):
        data["users"].append(record.user)
    contract_ids: set[int] = set()
    for book in books:
        if want("account"):
            data["accounts"].append(book.account)
        if want("cashBalance"):
            data["cashBalances"].append(book.cash)
        for position in book.positions.values():
            contract_ids.add(position.contractId)
            if want("position"):
                data["positions"].append(position)
        for rec in book.orders.values():
            contract_ids.add(rec.order.contractId)
            if want("order"):
                data["orders"].append(rec.order)
            if want("orderVersion"):
                data["orderVersions"].extend(rec.versions)
            if want("fill"):
                data["fills"].extend(rec.fills)
            for crec in rec.commands:
                if want("command"):
                    data["commands"].append(crec.command)
                if want("commandReport"):
                    data["commandReports"].extend(crec.reports)
                if want("executionReport"):
                    data["executionReports"].extend(crec.executions)
    infos = [i for i in (venue.contracts.by_id(c) for c in sorted(contract_ids)) if i]
    if want("contract"):
        data["contracts"] = [i.contract for i in infos]
    if want("contractMaturity"):
        data["contractMaturities"] = [i.maturity for i in infos]
    if want("product"):
        data["products"] = list({i.product.id: i.product for i in infos}.values())
    return data, Subscription(account_ids, types)
