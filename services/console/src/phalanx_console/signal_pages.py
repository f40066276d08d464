"""The signal log, live: ingest's log of each signal and its per-account outcomes, pushed to the
browser with server-sent events (htmx's SSE extension swaps the fragment in).

- ``GET /strategies/{id}/signals/live``: ``text/event-stream``; an event ``signals`` carries the
  rendered log (newest first, the newest signal's accounts listed) whenever it changed, a comment
  line keeps the connection open meanwhile. The console asks ingest every ``live_poll_s``
  (ADR-0130); the stream ends after ``max_stream_s`` and the browser reconnects.
- ``GET /signals/{signal_id}``: one signal with every account's outcome, phase timings and the
  trace link; while it is still executing its body (``/signals/{signal_id}/body``) is asked
  for again every second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from phalanx_console.backends import AdminApis, BackendError, Id
from phalanx_console.guards import signed_in
from phalanx_console.render import Renderer

__all__ = ["signal_router", "sse_event"]

_SHOWN = 20
_KEEPALIVE_S = 15.0


def sse_event(name: str, data: str) -> str:
    """One server-sent event (every line of ``data`` as its own ``data:`` line)."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"


def signal_router(
    apis: AdminApis,
    renderer: Renderer,
    poll_s: float,
    closing: asyncio.Event,
    max_stream_s: float = 300.0,
) -> APIRouter:
    """The signal log routes; ``closing`` ends every open stream when the console stops."""
    router = APIRouter()

    @router.get("/strategies/{strategy_id}/signals/live")
    async def live(request: Request, strategy_id: Id) -> StreamingResponse:
        signed_in(request)

        return StreamingResponse(
            _signal_events(
                request,
                lambda: _log_fragment(apis, renderer, strategy_id),
                closing,
                poll_s,
                max_stream_s,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.get("/strategies/{strategy_id}/signals")
    async def log_now(request: Request, strategy_id: Id) -> HTMLResponse:
        """The same fragment once (for a browser without server-sent events)."""
        signed_in(request)
        return HTMLResponse(
            await _log_fragment(apis, renderer, strategy_id), headers={"Cache-Control": "no-store"}
        )

    @router.get("/signals/{signal_id}")
    async def one_signal(request: Request, signal_id: Id) -> HTMLResponse:
        session = signed_in(request)
        signal = await apis.get("ingest", f"/admin/signals/{signal_id}")
        return renderer.page("signal.html", session=session, signal=signal)

    @router.get("/signals/{signal_id}/body")
    async def signal_body(request: Request, signal_id: Id) -> HTMLResponse:
        """The signal's facts and outcomes; the page asks again every second until the signal
        is done."""
        signed_in(request)
        signal = await apis.get("ingest", f"/admin/signals/{signal_id}")
        return HTMLResponse(
            renderer.fragment("_signal_body.html", signal=signal),
            headers={"Cache-Control": "no-store"},
        )

    return router


async def _log_fragment(apis: AdminApis, renderer: Renderer, strategy_id: str) -> str:
    """The latest signals of a strategy, rendered (or the error that kept them away)."""
    try:
        answer = await apis.get("ingest", f"/admin/strategies/{strategy_id}/signals", limit=_SHOWN)
        signals: list[dict[str, Any]] = answer["signals"]
        error = ""
    except BackendError as exc:
        signals, error = [], f"{exc.service}: {exc.detail}"
    return renderer.fragment(
        "signals_live.html",
        strategy_id=strategy_id,
        signals=signals,
        latest=signals[0] if signals else None,
        error=error,
    )


async def _signal_events(
    request: Request,
    fragment_now: Callable[[], Awaitable[str]],
    closing: asyncio.Event,
    poll_s: float,
    max_stream_s: float,
) -> AsyncIterator[str]:
    """Server-sent events: the fragment whenever it changed (polled every ``poll_s``), a
    keep-alive comment when quiet, until the client leaves, ``closing`` or ``max_stream_s``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + max_stream_s
    last_sent = ""
    quiet_since = loop.time()
    yield "retry: 2000\n\n"
    while not closing.is_set() and loop.time() < end:
        if await request.is_disconnected():
            return
        fragment = await fragment_now()
        if fragment != last_sent:
            last_sent = fragment
            quiet_since = loop.time()
            yield sse_event("signals", fragment)
        elif loop.time() - quiet_since > _KEEPALIVE_S:
            quiet_since = loop.time()
            yield ": keep-alive\n\n"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), poll_s)
