"""HTTP plumbing shared by services: an in-process uvicorn server and the admin bearer check."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, Header, HTTPException, status

from phalanx_common.http_limits import (
    HttpLimits,
    RequestGate,
    bearer_matches,
    deadline_h11_protocol,
    omit_inputs_from_validation_errors,
)
from phalanx_common.telemetry import instrument_app

__all__ = ["HttpServer", "admin_guard"]

log = logging.getLogger(__name__)


class HttpServer:
    """Serve an ASGI app with uvicorn inside the running event loop.

    ``port=0`` binds a free port; :attr:`port` tells which once started. ``limits`` (ADR-0115):
    the admin credential and the body size are checked before the app reads a body, request
    heads have a deadline and idle keep-alive connections are closed.
    """

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        name: str = "http",
        proxy_headers: bool = False,
        limits: HttpLimits | None = None,
    ) -> None:
        instrument_app(app)  # server spans, when tracing is on (ADR-0070)
        omit_inputs_from_validation_errors(app)  # a 422 never echoes what was sent (ADR-0119)
        limits = limits or HttpLimits()
        self.limits = limits
        # proxy_headers=False (the default): uvicorn leaves the TCP peer as the client; it would
        # otherwise rewrite it from an X-Forwarded-For sent by anyone through 127.0.0.1. A
        # service that needs the forwarded client decides itself which proxies to believe.
        config = uvicorn.Config(
            RequestGate(app, limits),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            proxy_headers=proxy_headers,
            # uvicorn's own handlers off: its records go through phalanx_common.logs like all
            log_config=None,
            http=deadline_h11_protocol(limits.head_timeout_s),
            timeout_keep_alive=max(1, round(limits.keep_alive_s)),
            h11_max_incomplete_event_size=limits.max_head_bytes,
            # No limit_concurrency: uvicorn would answer 503 to every new request once idle or
            # slow connections reach it, which is what a flood wants (ADR-0115).
        )
        self._server = uvicorn.Server(config)
        # Signals belong to the service lifecycle (phalanx_common.lifecycle), not to uvicorn:
        # uvicorn would otherwise replace our handlers and re-raise SIGTERM after its shutdown.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port
        self.name = name

    async def start(self) -> None:
        """Start serving and return once the socket listens.

        Raises:
            RuntimeError: if the server could not start (e.g. the port is taken).
        """
        self._task = asyncio.create_task(self._server.serve(), name=f"http:{self.name}")
        while not self._server.started:
            if self._task.done():
                raise RuntimeError(
                    f"{self.name}: HTTP server failed to start on {self.host}:{self.port}"
                )
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info("%s listening on http://%s:%d", self.name, self.host, self.port)

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 10)
        self._task = None


def admin_guard(expected_token: str) -> Callable[[str | None], None]:
    """A FastAPI dependency that requires ``Authorization: Bearer <expected_token>``.

    An empty token, presented or configured, never passes (ADR-0115)."""

    def _check(authorization: str | None = Header(default=None)) -> None:
        if not bearer_matches(authorization, expected_token):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="admin API: send Authorization: Bearer <PHALANX_ADMIN_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return _check
