"""The ASGI application: REST under ``/v1``, the WebSocket, OAuth (``/oauth``), ``/admin``."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from phalanx_sim.admin import admin_router
from phalanx_sim.host import SimHost
from phalanx_sim.oauth import oauth_routes
from phalanx_sim.rest import rest_route

__all__ = ["build_app"]


def build_app(sim: SimHost) -> FastAPI:
    """Build the simulator's FastAPI app around a running simulator (a :class:`SimHost`)."""
    app = FastAPI(
        title="Phalanx Tradovate simulator",
        docs_url="/admin/docs",
        redoc_url=None,
        openapi_url="/admin/openapi.json",
    )

    async def websocket_endpoint(websocket: WebSocket) -> None:
        await sim.hub.serve(websocket)

    app.router.routes.append(WebSocketRoute("/v1/websocket", websocket_endpoint))

    async def md_websocket_endpoint(websocket: WebSocket) -> None:
        await sim.md_hub.serve(websocket)

    app.router.routes.append(WebSocketRoute("/md/v1/websocket", md_websocket_endpoint))
    app.include_router(admin_router(sim))
    app.router.routes.extend(oauth_routes(sim.venue))
    app.router.routes.append(rest_route(sim.venue))
    return app
