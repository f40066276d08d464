"""Admission: the faults (``faults.py``) and rate limits (``limits.py``) around every request.

:meth:`Admission.admit` runs before an endpoint (an injected 5xx, a penalty storm, a limit
refusal: the request is not handled); :meth:`Admission.settle` runs after it (endpoint limits
are counted, a response is dropped or delayed). Both transports go through them: REST via
:meth:`~phalanx_sim.venue.Venue.handle`, the socket's ``authorize`` and sync directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import msgspec

from phalanx_sim.faults import DROPPABLE, Faults
from phalanx_sim.limits import LimitConfig, Limiter, Verdict
from phalanx_sim.replies import Reply
from phalanx_sim.schemas import ErrorText
from phalanx_sim.state import Session, SimState
from phalanx_sim.venue_core import VenueCore

__all__ = ["Admission", "refused_reply"]


def refused_reply(verdict: Verdict, user_id: int | None) -> Reply:
    """The reply of a request refused by the limiter (penalty, 423 or 429)."""
    return Reply(verdict.status, verdict.payload, user_id)


_ENDPOINT_LIMITED = frozenset(
    {"auth/accesstokenrequest", "auth/renewaccesstoken", "auth/me", "user/syncrequest"}
)
_TICKET_DECODER = msgspec.json.Decoder(dict[str, Any])


def _ticket_of(body: bytes | str) -> str | None:
    """The ``p-ticket`` of a resent request body, if any (cheap when there is none)."""
    if isinstance(body, str):
        if "p-ticket" not in body:
            return None
    elif b"p-ticket" not in body:
        return None
    try:
        ticket = _TICKET_DECODER.decode(body).get("p-ticket")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return str(ticket) if ticket is not None else None


def _login_name(body: bytes | str) -> str:
    try:
        name = _TICKET_DECODER.decode(body).get("name")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ""
    return str(name) if name is not None else ""


class Admission:
    """Faults by user and the limiter, applied to the requests of one venue."""

    def __init__(self, core: VenueCore) -> None:
        self._core = core
        self.limiter = Limiter(
            LimitConfig.from_settings(core.settings), core.settings.sim_violation_log_max
        )
        #: fault sets by user id (``None``: everyone)
        self.faults: dict[int | None, Faults] = {}
        #: draws of the random faults (``dropRate``, ``errorRate``)
        self.fault_draws = random.Random()  # noqa: S311 - fault injection, not security
        self._release: asyncio.Event | None = None

    @property
    def state(self) -> SimState:
        """The venue's state (replaced on reset): logins by name, fault counters."""
        return self._core.state

    def reset(self) -> None:
        """Forget the faults and the limiter's windows (the limits and the draws stay)."""
        self.limiter.reset()
        self.faults.clear()

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`release_hung` (the dropped-response fault)."""
        if self._release is None:
            self._release = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), seconds)

    def release_hung(self) -> None:
        """End every :meth:`hang` now (the simulator is stopping)."""
        if self._release is not None:
            self._release.set()
            self._release = None

    @property
    def limits(self) -> LimitConfig:
        """The limits in force."""
        return self.limiter.config

    def _login_key(self, key: str, session: Session | None, body: bytes | str) -> int | str:
        if session is not None:
            return session.user_id
        if key == "auth/accesstokenrequest":
            name = _login_name(body)
            record = self.state.users_by_name.get(name)
            return record.user.id if record is not None else name.lower()
        return ""

    def _endpoint_key(self, login: int | str, client: str) -> int | str:
        return client if self.limiter.config.endpoint_scope == "ip" else login

    def _faults(self, login: int | str) -> list[Faults]:
        found: list[Faults] = []
        own = self.faults.get(login) if isinstance(login, int) else None
        if own is not None:
            found.append(own)
        common = self.faults.get(None)
        if common is not None:
            found.append(common)
        return found

    def _prune(self, faults: Faults) -> None:
        if faults.idle and self.faults.get(faults.userId) is faults:
            del self.faults[faults.userId]

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
        if key == "authorize" and not self.limiter.config.count_authorize:
            return None
        faults_on = bool(self.faults)
        limits_on = self.limiter.config.enabled
        if not faults_on and not limits_on:
            return None
        login = self._login_key(key, session, body)
        ticket = _ticket_of(body)
        user_id = session.user_id if session is not None else None
        if faults_on:
            refusal, ticket = self._fault_refusal(key, login, ticket, user_id, now)
            if refusal is not None:
                return refusal
        if not limits_on:
            return None
        if session is not None:
            refused = self.limiter.check_login(session.user_id, key, ticket, now, transport)
            if refused is not None:
                return refused_reply(refused, user_id)
        refused = self.limiter.check_endpoint(
            self._endpoint_key(login, client), key, now, transport
        )
        return refused_reply(refused, user_id) if refused is not None else None

    def _fault_refusal(
        self, key: str, login: int | str, ticket: str | None, user_id: int | None, now: float
    ) -> tuple[Reply | None, str | None]:
        """An error or penalty fault's refusal, and the ticket left to check (``None`` once a
        storm ticket was honoured)."""
        for faults in self._faults(login):
            if faults.errorCount > 0 and faults.applies_to(key):
                faults.errorCount -= 1
                self._prune(faults)
                self.state.counters["faultErrors"] += 1
                return Reply(faults.errorStatus, '"Service Unavailable"', user_id), ticket
            if (
                faults.errorRate > 0
                and faults.applies_to(key)
                and self.fault_draws.random() < faults.errorRate
            ):
                self.state.counters["faultErrors"] += 1
                return Reply(faults.errorStatus, '"Service Unavailable"', user_id), ticket
        if ticket is not None and self.limiter.redeem(login, ticket, now):
            return None, None  # a storm ticket, honoured
        for faults in self._faults(login):
            if faults.penaltyCount > 0 and faults.applies_to(key):
                faults.penaltyCount -= 1
                self._prune(faults)
                storm = self.limiter.penalty(login, faults.penaltyTimeS, now)
                return Reply(storm.status, storm.payload, user_id), ticket
        return None, ticket

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
        if self.limiter.config.enabled and key in _ENDPOINT_LIMITED:
            failed = reply.status != 200 or isinstance(reply.payload, ErrorText)
            login = self._login_key(key, session, body)
            self.limiter.count_endpoint(self._endpoint_key(login, client), key, failed, now)
        if not self.faults or session is None:
            return reply
        for faults in self._faults(session.user_id):
            if (
                (faults.dropResponses > 0 or faults.dropRate > 0)
                and key in DROPPABLE
                and reply.status == 200
                and getattr(reply.payload, "orderId", None) is not None
            ):
                if faults.dropResponses > 0:
                    faults.dropResponses -= 1
                    self._prune(faults)
                elif self.fault_draws.random() >= faults.dropRate:
                    continue
                self.state.counters["faultDrops"] += 1
                reply = reply._replace(drop=True)
                break
        for faults in self._faults(session.user_id):
            if faults.latencyMs > 0:
                spread = abs(faults.latencyJitterMs)
                delay_ms = faults.latencyMs + (
                    self.fault_draws.uniform(-spread, spread) if spread > 0 else 0.0
                )
                return reply._replace(delay=max(0.0, delay_ms) / 1000.0)
        return reply
