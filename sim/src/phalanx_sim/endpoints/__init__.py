"""The venue's endpoints, one module per family, and the route table that joins them."""

from __future__ import annotations

from phalanx_sim.endpoints.auth import auth_routes
from phalanx_sim.endpoints.entities import entity_routes
from phalanx_sim.endpoints.orders import order_routes
from phalanx_sim.endpoints.reference import reference_routes
from phalanx_sim.routes import RouteTable

__all__ = ["build_routes"]


def build_routes() -> RouteTable:
    """Every endpoint by lower-case name (``order/placeoso``)."""
    routes: RouteTable = {}
    for family in (auth_routes(), order_routes(), reference_routes(), entity_routes()):
        routes.update(family)
    return routes
