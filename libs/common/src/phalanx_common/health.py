"""Readiness: ``GET /readyz`` answers 200 only when every dependency a service needs is there.

Liveness (``GET /healthz``) stays each service's own cheap answer: the process serves HTTP.
Readiness asks the dependencies: NATS connected, Redis answering a ``PING`` (where used), the
ledger's replay done. ``200 {"status": "ready", "checks": {name: true, ...}}`` or
``503 {"status": "not-ready", "checks": {...}}`` naming the failing checks (ADR-0077).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

__all__ = ["Check", "Readiness", "add_readiness_route", "redis_check"]

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool] | bool]


class Readiness:
    """Named checks; each is a function (sync or async) returning whether the part is ready.

    A check that raises or takes longer than ``timeout_s`` counts as not ready. A check added
    with ``required=False`` is reported but does not make the service unready.
    """

    def __init__(self, timeout_s: float = 1.0) -> None:
        self._checks: dict[str, Check] = {}
        self._optional: set[str] = set()
        self._timeout_s = timeout_s

    def add(self, name: str, check: Check, required: bool = True) -> Readiness:
        """Register ``check`` under ``name`` (replacing one of that name)."""
        self._checks[name] = check
        if required:
            self._optional.discard(name)
        else:
            self._optional.add(name)
        return self

    def ready(self, checks: dict[str, bool]) -> bool:
        """Whether results of :meth:`run` make the service ready (every required check)."""
        return all(ok for name, ok in checks.items() if name not in self._optional)

    async def run(self) -> dict[str, bool]:
        """Run every check at once; ``{name: ready}``."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._one(self._checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def _one(self, check: Check) -> bool:
        try:
            result = check()
            if isinstance(result, bool):
                return result
            return bool(await asyncio.wait_for(result, self._timeout_s))
        except Exception as exc:
            log.debug("readiness check failed: %r", exc)
            return False


def redis_check(client: Any) -> Check:
    """A check that Redis answers ``PING`` (``client``: a ``redis.asyncio.Redis``)."""

    async def ping() -> bool:
        return bool(await client.ping())

    return ping


def add_readiness_route(app: FastAPI, readiness: Readiness) -> None:
    """Serve ``GET /readyz`` from ``readiness``."""

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 when every dependency is ready, else 503 naming what is not."""
        checks = await readiness.run()
        ready = readiness.ready(checks)
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "checks": checks},
            status_code=200 if ready else 503,
        )
