"""The executor's HTTP API: health, trading state, guards and the kill switch.

Every replica serves it (any one will do for writes: state lives in KV and the kill switch
travels on the bus). Admin routes need ``Authorization: Bearer <PHALANX_ADMIN_TOKEN>``.

- ``GET /healthz``: liveness: replica, shards, connected logins, orders placed.
- ``GET /readyz``: 200 when NATS is connected and Redis answers, else 503.
- ``GET /metrics``: Prometheus metrics of this replica (docs/metrics.md).
- ``GET /admin/trading-state``; ``PUT /admin/trading-state/{scope}``
  ``{"state","reason","by"?}`` with scope ``global``, ``strategy.<id>`` or ``account.<id>``;
  state ACTIVE, REDUCING or HALTED; ``by`` names who asked (shown with the state).
- ``PUT /admin/guards/{account_id}`` ``{"max_contracts","daily_loss_limit"}``; ``GET`` reads.
- ``GET /admin/budgets``: each login's venue request budget: per window its limit, span and
  permits used now, and how long a penalty or lockout still blocks it (shared in Redis, so any
  replica answers for every login).
- ``POST /admin/kill-switch`` ``{"reason","by"?}``: global HALTED, then every replica cancels and
  flattens what it owns.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.codec import encode
from phalanx_common.events import KillSwitchEngaged, TradingStateChanged
from phalanx_common.health import Readiness, add_readiness_route
from phalanx_common.http import admin_guard
from phalanx_common.kvmirror import KvMirror
from phalanx_common.metrics import CollectorRegistry, add_metrics_route
from phalanx_common.records import AccountGuardRecord, TradingStateRecord

__all__ = ["create_app"]

_SCOPE = re.compile(r"^(global|strategy\.[A-Za-z0-9_-]+|account\.\d+)$")


class StateIn(BaseModel):
    """Body of ``PUT /admin/trading-state/{scope}``."""

    state: Literal["ACTIVE", "REDUCING", "HALTED"]
    reason: str = Field(default="", max_length=500)
    by: str = Field(default="", max_length=100, description="Who asked (shown with the state).")


class GuardIn(BaseModel):
    """Body of ``PUT /admin/guards/{account_id}``."""

    max_contracts: int | None = Field(default=None, ge=0)
    daily_loss_limit: Decimal | None = Field(default=None, gt=0)


class KillIn(BaseModel):
    """Body of ``POST /admin/kill-switch``."""

    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(default="", max_length=100, description="Who asked (shown with the state).")


def create_app(
    *,
    bus: Bus,
    clock: Clock,
    admin_token: str,
    states: KvMirror[TradingStateRecord],
    guards: KvMirror[AccountGuardRecord],
    health: Callable[[], dict[str, Any]],
    registry: CollectorRegistry | None = None,
    readiness: Readiness | None = None,
    budgets: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None,
) -> FastAPI:
    """Build the executor's HTTP app (``/metrics``, ``/readyz`` and ``/admin/budgets`` when
    given their sources)."""
    app = FastAPI(title="Phalanx executor", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return health()

    if registry is not None:
        add_metrics_route(app, registry)
    if readiness is not None:
        add_readiness_route(app, readiness)

    router = APIRouter(prefix="/admin", dependencies=[Depends(admin_guard(admin_token))])
    _state_routes(router, bus, clock, states)
    _guard_routes(router, bus, guards)
    _kill_switch_route(router, bus, clock)

    @router.get("/budgets")
    async def get_budgets() -> dict[str, Any]:
        if budgets is None:
            raise HTTPException(404, "budgets are not available on this replica")
        return {"logins": await budgets()}

    app.include_router(router)
    return app


def _state_routes(
    router: APIRouter, bus: Bus, clock: Clock, states: KvMirror[TradingStateRecord]
) -> None:
    """``GET /admin/trading-state`` and ``PUT /admin/trading-state/{scope}``."""

    @router.get("/trading-state")
    async def get_states() -> dict[str, Any]:
        return {
            "states": [
                {
                    "scope": r.scope,
                    "state": r.state,
                    "reason": r.reason,
                    "updated_ns": r.updated_ns,
                    "by": r.by,
                }
                for r in states.values()
            ]
        }

    @router.put("/trading-state/{scope}")
    async def put_state(scope: str, body: StateIn) -> dict[str, Any]:
        if not _SCOPE.match(scope):
            raise HTTPException(
                422, "scope must be 'global', 'strategy.<id>' or 'account.<numeric id>'"
            )
        now = clock.time_ns()
        record = TradingStateRecord(
            scope=scope, state=body.state, reason=body.reason, updated_ns=now, by=body.by
        )
        kv = await bus.key_value(subjects.Buckets.TRADING_STATE)
        await kv.put(scope, encode(record))
        await bus.publish(
            subjects.CONTROL_STATE,
            TradingStateChanged(
                event_id=ids.new_event_id(),
                ts_event=now,
                ts_init=now,
                scope=scope,
                state=body.state,
                reason=body.reason,
            ),
        )
        return {"scope": scope, "state": body.state, "reason": body.reason}


def _guard_routes(router: APIRouter, bus: Bus, guards: KvMirror[AccountGuardRecord]) -> None:
    """``PUT`` and ``GET /admin/guards/{account_id}``."""

    @router.put("/guards/{account_id}")
    async def put_guard(account_id: int, body: GuardIn) -> dict[str, Any]:
        record = AccountGuardRecord(
            account_id=account_id,
            max_contracts=body.max_contracts,
            daily_loss_limit=body.daily_loss_limit,
        )
        kv = await bus.key_value(subjects.Buckets.GUARDS)
        await kv.put(str(account_id), encode(record))
        return {
            "account_id": account_id,
            "max_contracts": body.max_contracts,
            "daily_loss_limit": None
            if body.daily_loss_limit is None
            else str(body.daily_loss_limit),
        }

    @router.get("/guards/{account_id}")
    async def get_guard(account_id: int) -> dict[str, Any]:
        record = guards.get(str(account_id))
        if record is None:
            raise HTTPException(404, f"no guards set for account {account_id}")
        limit = record.daily_loss_limit
        return {
            "account_id": account_id,
            "max_contracts": record.max_contracts,
            "daily_loss_limit": None if limit is None else str(limit),
        }


def _kill_switch_route(router: APIRouter, bus: Bus, clock: Clock) -> None:
    """``POST /admin/kill-switch``: halt globally and tell every replica (ADR-0040)."""

    @router.post("/kill-switch", status_code=202)
    async def kill_switch(body: KillIn) -> dict[str, Any]:
        now = clock.time_ns()
        kv = await bus.key_value(subjects.Buckets.TRADING_STATE)
        halted = TradingStateRecord(
            scope="global",
            state="HALTED",
            reason=f"kill switch: {body.reason}",
            updated_ns=now,
            by=body.by,
        )
        await kv.put("global", encode(halted))
        event = KillSwitchEngaged(
            event_id=ids.new_event_id(), ts_event=now, ts_init=now, reason=body.reason
        )
        await bus.publish(subjects.CONTROL_KILL, event)
        return {"kill_event_id": event.event_id, "state": "HALTED"}
