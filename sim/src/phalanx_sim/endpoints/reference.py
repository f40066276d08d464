"""Reference-data endpoints: ``contract/find``, ``item``, ``items``, ``suggest``,
``product/find``, ``contractMaturity/item`` (the same for every session)."""

from __future__ import annotations

from phalanx_sim.endpoints.params import ids_param, int_param, query_params
from phalanx_sim.replies import Reply
from phalanx_sim.routes import RouteTable, SessionRoute
from phalanx_sim.state import Session
from phalanx_sim.venue_core import VenueCore

__all__ = ["reference_routes"]


def _contract_find(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    info = venue.contracts.resolve(query_params(query).get("name", ""))
    return Reply(200, info.contract) if info is not None else Reply(404, '"Not found"')


def _contract_item(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    cid = int_param(query, "id")
    info = venue.contracts.by_id(cid) if cid is not None else None
    return Reply(200, info.contract) if info is not None else Reply(404, '"Not found"')


def _contract_items(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    infos = [venue.contracts.by_id(i) for i in ids_param(query, "ids")]
    return Reply(200, [i.contract for i in infos if i is not None])


def _contract_suggest(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    params = query_params(query)
    text = params.get("t", "")
    limit = int(params.get("l", "10")) if params.get("l", "10").isdigit() else 10
    resolved = venue.contracts.resolve(text)
    found = [resolved.contract] if resolved is not None else []
    found += [c for c in venue.contracts.suggest(text, limit) if c not in found]
    return Reply(200, found[:limit])


def _product_find(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    product = venue.contracts.product(query_params(query).get("name", ""))
    return Reply(200, product) if product is not None else Reply(404, '"Not found"')


def _maturity_item(venue: VenueCore, _s: Session, query: str, _b: bytes | str) -> Reply:
    mid = int_param(query, "id")
    for info in venue.contracts.known():
        if info.maturity.id == mid:
            return Reply(200, info.maturity)
    return Reply(404, '"Not found"')


def reference_routes() -> RouteTable:
    """The reference-data endpoints (a session is needed, its user does not matter)."""
    return {
        "contract/find": SessionRoute(_contract_find),
        "contract/item": SessionRoute(_contract_item),
        "contract/items": SessionRoute(_contract_items),
        "contract/suggest": SessionRoute(_contract_suggest),
        "product/find": SessionRoute(_product_find),
        "contractmaturity/item": SessionRoute(_maturity_item),
    }
