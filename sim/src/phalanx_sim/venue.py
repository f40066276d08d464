"""The venue: every Tradovate endpoint, shared by the REST and the WebSocket transports.

:meth:`Venue.handle` takes an endpoint name (matched case-insensitively, so ``order/placeOSO``
and ``order/placeoso`` are the same), the caller's session, the raw query string and the raw
body, and returns a :class:`Reply` (an HTTP-like status and a payload). The transports only frame
it: REST as the HTTP status and JSON body, the socket as ``a[{"s":..,"i":..,"d":..}]``.

Decisions where the reference is silent or uncertain (docs/tradovate-protocol.md):

- Wrong credentials: HTTP 200 with ``{"errorText": ...}`` (as the venue does, §2.1).
- Missing or invalid token: status 401 with ``"Access is denied"``.
- Orders on an account the user does not own, or whose ``accountSpec`` does not match its
  ``accountId``: by default HTTP 200 ``{"failureReason": "Unauthorized", "failureText":
  "Access is denied"}`` (``Unauthorized`` is in the official failureReason enum); with
  ``sim_foreign_account_mode="denied"`` status 401 ``"Access is denied"`` instead.
- An order without ``accountId``/``accountSpec``: HTTP 200 with failureReason ``UnknownReason``
  and a ``Violation: ...`` text (§4.3 says a "Violation" response).
- Canceling or modifying an order that is no longer working: failureReason ``TooLate``.
- ``liquidateposition`` on a flat position cancels the contract's working orders and answers
  failureReason ``UnknownReason``, failureText ``No position to liquidate``.
- Malformed bodies (wrong JSON types, missing required fields): status 400 with ``errorText``.
- ``<type>/item`` of an unknown or foreign id: status 404; ``deps`` of a foreign master: ``[]``.
- Unknown endpoints: status 404 with ``d`` = ``"\\"Not found: <endpoint>\\""`` (as observed).
- ``clOrdId`` is stored on the Command and never deduplicated.
- Market closed (``sim_session_closed`` or ``POST /admin/market``) → failureReason
  ``SessionClosed`` for every new order; a position beyond the account's max position
  (``sim_max_position`` or ``POST /admin/risk``) → ``MaxPosLimitReached`` (orders that reduce
  the position are always allowed).
- Faults and rate limits (``faults.py``, ``limits.py``) are applied before an endpoint runs.

The code lives in rooms: the session core (``venue_core.py``), admission (``admission.py``),
snapshots (``snapshots.py``), order validation (``validation.py``), the endpoints by family
(``endpoints/``) and the typed route records (``routes.py``). This module joins them.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec

from phalanx_sim.admission import Admission, refused_reply
from phalanx_sim.endpoints import build_routes
from phalanx_sim.faults import Faults
from phalanx_sim.limits import LimitConfig, Limiter
from phalanx_sim.replies import ACCESS_DENIED, Reply
from phalanx_sim.routes import PublicRoute, RouteTable
from phalanx_sim.schemas import ErrorText, SyncRequestBody
from phalanx_sim.settings import SimSettings
from phalanx_sim.snapshots import SNAPSHOT_KEYS, Subscription, build_snapshot
from phalanx_sim.state import RequestRecord, Session
from phalanx_sim.times import VenueClock
from phalanx_sim.venue_core import CreatedUser, VenueCore

__all__ = ["ACCESS_DENIED", "SNAPSHOT_KEYS", "CreatedUser", "Reply", "Subscription", "Venue"]

log = logging.getLogger(__name__)


class Venue(VenueCore):
    """The simulated Tradovate venue (state, contracts, matching) behind both transports."""

    def __init__(self, settings: SimSettings | None = None, clock: VenueClock | None = None):
        super().__init__(settings, clock)
        self._routes: RouteTable = build_routes()
        self.admission = Admission(self)

    def reset(self) -> None:
        """Forget every user, account, order and price, the faults and the limit windows."""
        super().reset()
        self.admission.reset()

    # ------------------------------------------------------------------ dispatch

    def is_public(self, endpoint: str) -> bool:
        """Whether an endpoint works without a token."""
        return isinstance(self._routes.get(endpoint.lower()), PublicRoute)

    def handle(
        self,
        endpoint: str,
        session: Session | None,
        query: str = "",
        body: bytes | str = b"",
        transport: str = "rest",
        client: str = "",
    ) -> Reply:
        """Serve one request and record it for ``/admin/requests`` and ``/admin/stats``.

        Faults and limits come first (:meth:`admit`): a refused request is not handled.
        """
        # interned: the request log keeps one copy of each endpoint name, not one per request
        key = sys.intern(endpoint.strip("/").lower())
        route = self._routes.get(key)
        now = self.clock.time()
        if route is None:
            reply = Reply(404, f'"Not found: {endpoint}"')
        elif isinstance(route, PublicRoute):
            run = partial(route.handler, self, query, body)
            reply = self._serve(key, session, body, transport, client, now, run)
        elif session is None:
            reply = Reply(401, ACCESS_DENIED)
            if key == "auth/me" and self.limits.enabled:
                refused = self.limiter.check_endpoint(client, key, now, transport)
                reply = refused_reply(refused, None) if refused is not None else reply
                self.limiter.count_endpoint(client, key, True, now)
        else:
            run = partial(route.handler, self, session, query, body)
            reply = self._serve(key, session, body, transport, client, now, run)
        user_id = (
            reply.user_id
            if reply.user_id is not None
            else (session.user_id if session is not None else None)
        )
        self.state.record_request(RequestRecord(now, user_id, key, transport, reply.status))
        return reply

    def _serve(
        self,
        key: str,
        session: Session | None,
        body: bytes | str,
        transport: str,
        client: str,
        now: float,
        run: Callable[[], Reply],
    ) -> Reply:
        """Admit, run the endpoint (``run``), settle."""
        refused_by = self.admit(key, session, body, transport, client, now)
        if refused_by is not None:
            return refused_by
        try:
            reply = run()
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            reply = Reply(400, ErrorText(errorText=f"Invalid request: {exc}"))
        except Exception:  # a simulator bug must not kill the socket or the server
            log.exception("endpoint %s failed", key)
            reply = Reply(500, '"Internal error"')
        return self.settle(key, session, body, reply, client, now)

    # ------------------------------------------------------------------ admission (admission.py)

    @property
    def limiter(self) -> Limiter:
        """The rate limiter."""
        return self.admission.limiter

    @property
    def limits(self) -> LimitConfig:
        """The limits in force."""
        return self.admission.limits

    @property
    def faults(self) -> dict[int | None, Faults]:
        """Fault sets by user id (``None``: everyone)."""
        return self.admission.faults

    @property
    def fault_draws(self) -> random.Random:
        """Draws of the random faults (``dropRate``, ``errorRate``)."""
        return self.admission.fault_draws

    def admit(
        self,
        key: str,
        session: Session | None,
        body: bytes | str,
        transport: str,
        client: str,
        now: float,
    ) -> Reply | None:
        """Faults and limits before handling: the refusal, or ``None`` to handle the request."""
        return self.admission.admit(key, session, body, transport, client, now)

    def settle(
        self,
        key: str,
        session: Session | None,
        body: bytes | str,
        reply: Reply,
        client: str,
        now: float,
    ) -> Reply:
        """After handling: count endpoint limits, apply the drop and latency faults."""
        return self.admission.settle(key, session, body, reply, client, now)

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`release_hung` (the dropped-response fault)."""
        await self.admission.hang(seconds)

    def release_hung(self) -> None:
        """End every :meth:`hang` now (the simulator is stopping)."""
        self.admission.release_hung()

    # ------------------------------------------------------------------ snapshots (snapshots.py)

    def snapshot(
        self, session: Session, body: SyncRequestBody
    ) -> tuple[dict[str, list[Any]], Subscription]:
        """Build a ``user/syncrequest`` snapshot and the subscription it implies."""
        return build_snapshot(self, session, body)
