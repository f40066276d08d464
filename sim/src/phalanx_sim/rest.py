"""REST transport: every venue endpoint under ``/v1/<endpoint>`` (GET or POST, any casing)."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from phalanx_sim.venue import Venue

__all__ = ["bearer_token", "rest_route"]

_encoder = msgspec.json.Encoder()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def rest_route(venue: Venue) -> Route:
    """A Starlette route serving ``/v1/{endpoint}`` from :meth:`Venue.handle`."""

    async def endpoint(request: Request) -> Response:
        path = request.path_params["endpoint"]
        session = venue.authenticate(bearer_token(request.headers.get("authorization")))
        body = await request.body()
        client = request.client.host if request.client is not None else ""
        reply = venue.handle(path, session, request.url.query, body, "rest", client)
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            # the order was accepted; its answer is lost: hang, then a gateway timeout
            await venue.hang(venue.settings.sim_fault_drop_hang_s)
            return Response(b'"Gateway Timeout"', status_code=504, media_type="application/json")
        headers = {"WWW-Authenticate": "Bearer"} if reply.status == 401 else None
        return Response(
            _encoder.encode(reply.payload),
            status_code=reply.status,
            media_type="application/json",
            headers=headers,
        )

    return Route("/v1/{endpoint:path}", endpoint, methods=["GET", "POST"])
