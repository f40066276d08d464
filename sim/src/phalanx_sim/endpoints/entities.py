"""Entity endpoints of a session's own data: ``<type>/list``, ``item``, ``items``, ``deps``,
``ldeps`` for accounts, orders, positions, cash balances, fills, versions, commands and their
reports, ``account/find``, and ``fillFee/*``. Foreign or unknown ids are not found (404) or
have no dependents (``[]``)."""

from __future__ import annotations

from typing import Any

from phalanx_sim.endpoints.params import ids_param, int_param, query_params
from phalanx_sim.entities import Entity
from phalanx_sim.replies import Reply
from phalanx_sim.routes import RouteTable, SessionHandler, SessionRoute
from phalanx_sim.state import ENTITY_TYPES, Session
from phalanx_sim.venue_core import VenueCore

__all__ = ["entity_routes"]


# ---- generic entity endpoints: list, item, items, deps, ldeps


def _children(venue: VenueCore, session: Session, entity_type: str, master: int) -> list[Any]:
    """Entities of a type that depend on a master id (foreign or unknown masters: none)."""
    state = venue.state
    uid = session.user_id
    if entity_type == "account":
        return (
            [state.accounts[a] for a in venue.user_of(session).account_ids] if master == uid else []
        )
    if entity_type in ("order", "position", "cashBalance"):
        return _children_of_account(venue, session, entity_type, master)
    if entity_type in ("fill", "orderVersion", "command"):
        return _children_of_order(venue, session, entity_type, master)
    crec = state.commands.get(master)
    if crec is None or state.accounts[crec.account_id].userId != uid:
        return []
    return list(crec.reports) if entity_type == "commandReport" else list(crec.executions)


def _children_of_account(
    venue: VenueCore, session: Session, entity_type: str, account_id: int
) -> list[Any]:
    """An owned account's orders, positions or cash balance."""
    book = venue.owned_book(session, account_id)
    if book is None:
        return []
    if entity_type == "order":
        return [rec.order for rec in book.orders.values()]
    if entity_type == "position":
        return list(book.positions.values())
    return [book.cash]


def _children_of_order(
    venue: VenueCore, session: Session, entity_type: str, order_id: int
) -> list[Any]:
    """An owned order's fills, versions or commands."""
    rec = venue.owned_order(session, order_id)
    if rec is None:
        return []
    if entity_type == "fill":
        return list(rec.fills)
    if entity_type == "orderVersion":
        return list(rec.versions)
    return [crec.command for crec in rec.commands]


_MASTER_OF = {
    "account": "user",
    "order": "account",
    "position": "account",
    "cashBalance": "account",
    "fill": "order",
    "orderVersion": "order",
    "command": "order",
    "commandReport": "command",
    "executionReport": "command",
}


def _all_of(venue: VenueCore, session: Session, entity_type: str) -> list[Any]:
    user = venue.user_of(session)
    if entity_type == "account":
        return _children(venue, session, "account", session.user_id)
    found: list[Any] = []
    for account_id in user.account_ids:
        if _MASTER_OF[entity_type] == "account":
            found.extend(_children(venue, session, entity_type, account_id))
            continue
        book = venue.state.books[account_id]
        for rec in book.orders.values():
            if _MASTER_OF[entity_type] == "order":
                found.extend(_children(venue, session, entity_type, rec.order.id))
            else:
                for crec in rec.commands:
                    found.extend(_children(venue, session, entity_type, crec.command.id))
    return found


def _visible(venue: VenueCore, session: Session, entity_type: str, entity_id: int) -> Entity | None:
    state = venue.state
    found = state.entities.get(entity_id)
    if found is None or ENTITY_TYPES.get(type(found)) != entity_type:
        return None
    account_id = state.account_of(found)
    account = None if account_id is None else state.accounts.get(account_id)
    if account is None or account.userId != session.user_id:
        return None
    return found


def _entity_routes(entity_type: str) -> RouteTable:
    def list_(venue: VenueCore, session: Session, _q: str, _b: bytes | str) -> Reply:
        return Reply(200, _all_of(venue, session, entity_type))

    def item(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        entity_id = int_param(query, "id")
        entity = _visible(venue, session, entity_type, entity_id) if entity_id else None
        return Reply(200, entity) if entity is not None else Reply(404, '"Not found"')

    def items(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        found = [_visible(venue, session, entity_type, i) for i in ids_param(query, "ids")]
        return Reply(200, [e for e in found if e is not None])

    def deps(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        master = int_param(query, "masterid")
        return Reply(200, _children(venue, session, entity_type, master) if master else [])

    def ldeps(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        found: list[Any] = []
        for master in ids_param(query, "masterids"):
            found.extend(_children(venue, session, entity_type, master))
        return Reply(200, found)

    base = entity_type.lower()
    routes: RouteTable = {
        f"{base}/list": SessionRoute(list_),
        f"{base}/item": SessionRoute(item),
        f"{base}/items": SessionRoute(items),
        f"{base}/deps": SessionRoute(deps),
        f"{base}/ldeps": SessionRoute(ldeps),
    }
    if entity_type == "account":

        def find(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
            account = venue.state.accounts_by_name.get(query_params(query).get("name", ""))
            if account is None or account.userId != session.user_id:
                return Reply(404, '"Not found"')
            return Reply(200, account)

        routes["account/find"] = SessionRoute(find)
    return routes


# ---- fillFee: one per fill, with the fill's id (fees.py)


def _fill_fee_of(venue: VenueCore, session: Session, fill_id: int) -> Any:
    found = venue.state.fill_fees.get(fill_id)
    if found is None:
        return None
    account = venue.state.accounts.get(found[1])
    return found[0] if account is not None and account.userId == session.user_id else None


def _fill_fee_routes() -> RouteTable:
    def list_(venue: VenueCore, session: Session, _q: str, _b: bytes | str) -> Reply:
        return Reply(
            200, [f for i in venue.state.fill_fees if (f := _fill_fee_of(venue, session, i))]
        )

    def item(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        fee = _fill_fee_of(venue, session, int_param(query, "id") or 0)
        return Reply(200, fee) if fee is not None else Reply(404, '"Not found"')

    def items(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        found = [_fill_fee_of(venue, session, i) for i in ids_param(query, "ids")]
        return Reply(200, [f for f in found if f is not None])

    def deps(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        fee = _fill_fee_of(venue, session, int_param(query, "masterid") or 0)
        return Reply(200, [] if fee is None else [fee])

    return {
        "fillfee/list": SessionRoute(list_),
        "fillfee/item": SessionRoute(item),
        "fillfee/items": SessionRoute(items),
        "fillfee/deps": SessionRoute(deps),
        "fillfee/ldeps": SessionRoute(_ldeps_of(deps)),
    }


def _ldeps_of(deps: SessionHandler) -> SessionHandler:
    def ldeps(venue: VenueCore, session: Session, query: str, _b: bytes | str) -> Reply:
        found: list[Any] = []
        for master in ids_param(query, "masterids"):
            found.extend(deps(venue, session, f"masterid={master}", b"").payload)
        return Reply(200, found)

    return ldeps


def entity_routes() -> RouteTable:
    """The entity endpoints of every entity type with a master, and of ``fillFee``."""
    routes: RouteTable = {}
    for entity_type in _MASTER_OF:
        routes.update(_entity_routes(entity_type))
    routes.update(_fill_fee_routes())
    return routes
