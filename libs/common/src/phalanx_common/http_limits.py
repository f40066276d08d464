"""What every service's HTTP server refuses before its routes see a request (ADR-0115).

- :class:`RequestGate` (ASGI): on admin paths the ``Authorization: Bearer`` credential is checked
  from the headers alone, so an unauthenticated client gets 401 before one byte of its body is
  read; a body larger than ``max_body_bytes`` is 413, judged on ``Content-Length`` and counted
  while it streams (never read whole first).
- :func:`bearer_matches`: the one comparison of a presented token with the configured one; an
  empty token on either side never matches.
- :func:`omit_inputs_from_validation_errors`: a 422 names the field and the rule, never the
  value sent (FastAPI echoes it, and a body may carry a password; ADR-0119).
- :func:`deadline_h11_protocol`: uvicorn's h11 protocol with a deadline for each request head
  (uvicorn has none): a connection that has not sent a whole request line and headers within
  ``head_timeout_s`` of connecting, or of its previous response, is closed.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from phalanx_common.settings import CommonSettings

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "HttpLimits",
    "RequestGate",
    "bearer_matches",
    "deadline_h11_protocol",
    "omit_inputs_from_validation_errors",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
"""1 MiB: the largest admin body (10,000 account ids in a bulk subscription) fits well inside."""

_UNAUTHORIZED_DETAIL = b'{"detail":"admin API: send Authorization: Bearer <PHALANX_ADMIN_TOKEN>"}'


def bearer_matches(authorization: str | None, expected_token: str) -> bool:
    """Whether ``authorization`` is ``Bearer <expected_token>``; never when either is empty."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token or not expected_token:
        return False
    return hmac.compare_digest(token.encode(), expected_token.encode())


@dataclass(frozen=True)
class HttpLimits:
    """Limits of one HTTP server (ADR-0115).

    Attributes:
        max_body_bytes: Largest request body on any route (413 above it).
        admin_token: Guards ``admin_prefixes`` before the body is read; ``None``: no admin routes.
        admin_prefixes: Path prefixes of the admin API.
        head_timeout_s: How long a connection may take to send a request's line and headers.
        keep_alive_s: How long an idle keep-alive connection stays open.
        max_head_bytes: Largest request line plus headers (h11 answers 400 above it).
    """

    max_body_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    admin_token: str | None = None
    admin_prefixes: tuple[str, ...] = ("/admin",)
    head_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_head_bytes: int = 16 * 1024

    @classmethod
    def from_settings(cls, settings: CommonSettings, *, admin: bool = True) -> HttpLimits:
        """The limits of a service's settings; ``admin``: it serves ``/admin`` routes."""
        return cls(
            max_body_bytes=settings.max_request_bytes,
            admin_token=settings.admin_token if admin else None,
            head_timeout_s=settings.http_head_timeout_s,
            keep_alive_s=settings.http_keep_alive_s,
        )


def _is_admin(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestGate:
    """ASGI middleware: the admin credential and the body size, checked before the app reads.

    Args:
        app: The application.
        limits: The server's limits.
    """

    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        if (
            limits.admin_token is not None
            and _is_admin(scope["path"], limits.admin_prefixes)
            and not bearer_matches(_header(scope, b"authorization"), limits.admin_token)
        ):
            await _answer(send, 401, _UNAUTHORIZED_DETAIL, [(b"www-authenticate", b"Bearer")])
            return
        declared = _header(scope, b"content-length") or ""
        if declared.strip().isdigit() and int(declared) > limits.max_body_bytes:
            await _answer(send, 413, _too_large(limits.max_body_bytes))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limits.max_body_bytes:
                    raise HTTPException(413, f"body larger than {limits.max_body_bytes} bytes")
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> bytes:
    return b'{"detail":"the body is larger than %d bytes"}' % limit


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The body was not read: the connection cannot carry another request.
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def deadline_h11_protocol(head_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol closing connections that are slow to send a request head."""

    class _Bound(_HeadDeadlineH11Protocol):
        _head_timeout_s = head_timeout_s

    return _Bound


class _HeadDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol closing a connection whose request head is late."""

    _head_timeout_s: float = 0.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: Any) -> None:
        # The connection now belongs to the WebSocket protocol: no more HTTP heads.
        self._cancel_head_deadline()
        super().handle_websocket_upgrade(event)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._head_deadline = self.loop.call_later(self._head_timeout_s, self._head_late)

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport.get_protocol() is not self:
            return  # upgraded (WebSocket)
        waiting_for_head = self.cycle is None or self.cycle.response_complete
        if waiting_for_head and not self.transport.is_closing():
            self.transport.close()


def omit_inputs_from_validation_errors(app: FastAPI) -> None:
    """Answer request validation errors (422) without the ``input`` FastAPI would echo."""

    async def _invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    app.add_exception_handler(RequestValidationError, _invalid)
