"""Rate limits, penalties, lockouts and violation counting (docs/tradovate-protocol.md §5).

Per login (user id), every counted request goes through two rolling windows (default 80 per
minute and 5,000 per hour). The escalation for a login that goes over:

1. The first request beyond a window is not handled: it gets ``{"p-ticket", "p-time"}`` (HTTP 200
   or socket ``s: 200``), ``p-time`` being the seconds until the window has room again.
2. Resending after ``p-time`` with ``"p-ticket": <ticket>`` in the body is honoured (the ticket
   is consumed) if the window has room; if not, it is a new penalty.
3. A request during a running penalty without a valid, due ticket ignores the penalty: it gets
   another p-ticket ``sim_penalty_strikes`` times, then one HTTP 423 (about to be locked out),
   then HTTP 429 (socket ``s: 429``): a lockout of ``sim_lockout_s``. Every request during a
   lockout is answered 429 and restarts it.

Every request answered with a penalty, 423 or 429 is a **violation**: counted per login and kept
(bounded) for ``/admin/violations`` and ``/admin/stats``.

Endpoint limits (rolling ``sim_limit_hour_s``), keyed per login or per client IP
(``sim_endpoint_limit_scope``): ``auth/renewaccesstoken`` 15 and ``user/syncrequest`` 300
(successes count), ``auth/me`` 10 failures, ``auth/accesstokenrequest`` 5 failures; beyond them
the answer is a p-ticket whose ``p-time`` is the documented back-off (15 s, 3 s, 30 s) or the time
until the window has room, whichever is longer; for ``accesstokenrequest`` it carries
``p-captcha: true``.

All accounting is O(1) amortised per request: deques of timestamps that never hold more than
their limit.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from phalanx_sim.settings import SimSettings

__all__ = ["ENDPOINT_BACKOFF_S", "LimitConfig", "Limiter", "LoginLimits", "Verdict", "Window"]

#: documented back-off of the endpoint limits (seconds)
ENDPOINT_BACKOFF_S: dict[str, float] = {
    "auth/accesstokenrequest": 15.0,
    "auth/renewaccesstoken": 15.0,
    "auth/me": 30.0,
    "user/syncrequest": 3.0,
}
_MAX_TICKETS = 10_000


class Window:
    """A rolling window: at most ``limit`` timestamps within ``span`` seconds."""

    __slots__ = ("limit", "span", "times")

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        times = self.times
        edge = now - self.span
        while times and times[0] <= edge:
            times.popleft()

    def full(self, now: float) -> bool:
        """Whether one more request at ``now`` would exceed the limit."""
        if self.limit <= 0:
            return False
        self._expire(now)
        return len(self.times) >= self.limit

    def add(self, now: float) -> None:
        """Count one request."""
        if self.limit > 0:
            self.times.append(now)

    def wait(self, now: float) -> float:
        """Seconds until there is room again (0 when there is)."""
        if not self.full(now):
            return 0.0
        return max(0.0, self.times[len(self.times) - self.limit] + self.span - now)


@dataclass(slots=True)
class LimitConfig:
    """The limits in force (from settings; changed at run time by ``PUT /admin/limits``)."""

    enabled: bool = True
    per_minute: int = 80
    per_hour: int = 5_000
    minute_s: float = 60.0
    hour_s: float = 3_600.0
    count_authorize: bool = False
    penalty_strikes: int = 3
    lockout_s: float = 3_600.0
    renew_per_hour: int = 15
    sync_per_hour: int = 300
    me_failures_per_hour: int = 10
    login_failures_per_hour: int = 5
    endpoint_scope: str = "login"

    @classmethod
    def from_settings(cls, settings: SimSettings) -> LimitConfig:
        """The limits configured by ``PHALANX_SIM_*`` settings."""
        return cls(
            enabled=settings.sim_rate_limits,
            per_minute=settings.sim_limit_per_minute,
            per_hour=settings.sim_limit_per_hour,
            minute_s=settings.sim_limit_minute_s,
            hour_s=settings.sim_limit_hour_s,
            count_authorize=settings.sim_limit_count_authorize,
            penalty_strikes=settings.sim_penalty_strikes,
            lockout_s=settings.sim_lockout_s,
            renew_per_hour=settings.sim_limit_renew_per_hour,
            sync_per_hour=settings.sim_limit_sync_per_hour,
            me_failures_per_hour=settings.sim_limit_me_failures_per_hour,
            login_failures_per_hour=settings.sim_limit_login_failures_per_hour,
            endpoint_scope=settings.sim_endpoint_limit_scope,
        )

    def endpoint_limit(self, endpoint: str) -> tuple[int, bool] | None:
        """``(limit per hour, only failures count)`` of an endpoint with its own limit."""
        if endpoint == "auth/renewaccesstoken":
            return self.renew_per_hour, False
        if endpoint == "user/syncrequest":
            return self.sync_per_hour, False
        if endpoint == "auth/me":
            return self.me_failures_per_hour, True
        if endpoint == "auth/accesstokenrequest":
            return self.login_failures_per_hour, True
        return None


@dataclass(slots=True)
class LoginLimits:
    """Rate-limit state of one login."""

    minute: Window
    hour: Window
    penalty_until: float = 0.0
    strikes: int = 0
    lockout_until: float = 0.0
    tickets: dict[str, float] = field(default_factory=dict)
    violations: int = 0

    def view(self, now: float) -> dict[str, Any]:
        """JSON view for ``/admin/limits``."""
        return {
            "lastMinute": len(self.minute.times)
            if not self.minute.full(now)
            else self.minute.limit,
            "lastHour": len(self.hour.times) if not self.hour.full(now) else self.hour.limit,
            "penaltyS": max(0.0, self.penalty_until - now),
            "lockoutS": max(0.0, self.lockout_until - now),
            "strikes": self.strikes,
            "violations": self.violations,
        }


@dataclass(slots=True, frozen=True)
class Verdict:
    """Why a request was not handled: HTTP-like status and payload (a penalty, 423 or 429)."""

    status: int
    payload: Any
    kind: str


class Limiter:
    """Per-login and per-endpoint limits with penalties, lockouts and violation records."""

    def __init__(self, config: LimitConfig, violation_log_max: int = 100_000) -> None:
        self.config = config
        self.logins: dict[int | str, LoginLimits] = {}
        self.endpoints: dict[tuple[int | str, str], Window] = {}
        self.violations: deque[dict[str, Any]] = deque(maxlen=max(1, violation_log_max))
        self.violation_count = 0
        self.by_login: Counter[int | str] = Counter()
        self._tickets = itertools.count(1)

    # ------------------------------------------------------------------ per login

    def _login(self, key: int | str) -> LoginLimits:
        limits = self.logins.get(key)
        if limits is None:
            config = self.config
            limits = self.logins[key] = LoginLimits(
                Window(config.per_minute, config.minute_s), Window(config.per_hour, config.hour_s)
            )
        return limits

    def _ticket(self, limits: LoginLimits, due: float) -> str:
        ticket = f"{next(self._tickets)}.{secrets.token_hex(8)}"
        if len(limits.tickets) >= _MAX_TICKETS:
            limits.tickets.pop(next(iter(limits.tickets)))
        limits.tickets[ticket] = due
        return ticket

    def violation(
        self, key: int | str, endpoint: str, kind: str, now: float, transport: str
    ) -> None:
        """Record a violation of a login (or a name/IP for anonymous endpoints)."""
        self.violation_count += 1
        self.by_login[key] += 1
        limits = self.logins.get(key)
        if limits is not None:
            limits.violations += 1
        self.violations.append(
            {
                "time": now,
                "login": key,
                "endpoint": endpoint,
                "kind": kind,
                "transport": transport,
            }
        )

    def check_login(
        self, user_id: int, endpoint: str, ticket: str | None, now: float, transport: str
    ) -> Verdict | None:
        """Admit (and count) a request of a login, or say how it is refused."""
        config = self.config
        limits = self._login(user_id)
        if now < limits.lockout_until:
            limits.lockout_until = now + config.lockout_s
            self.violation(user_id, endpoint, "lockout", now, transport)
            return Verdict(429, "Too Many Requests: locked out", "lockout")
        honoured = False
        if ticket is not None:
            due = limits.tickets.get(ticket)
            if due is not None and now >= due:
                del limits.tickets[ticket]
                honoured = True
        if not honoured and now < limits.penalty_until:
            limits.strikes += 1
            if limits.strikes > config.penalty_strikes + 1:
                limits.lockout_until = now + config.lockout_s
                self.violation(user_id, endpoint, "lockout", now, transport)
                return Verdict(429, "Too Many Requests: locked out", "lockout")
            if limits.strikes > config.penalty_strikes:
                self.violation(user_id, endpoint, "warning", now, transport)
                return Verdict(423, "Locked: about to be locked out", "warning")
            self.violation(user_id, endpoint, "penalty", now, transport)
            return self._penalty(limits, limits.penalty_until - now, now)
        wait = max(limits.minute.wait(now), limits.hour.wait(now))
        if wait > 0:
            self.violation(user_id, endpoint, "rate", now, transport)
            return self._penalty(limits, wait, now)
        limits.strikes = 0
        limits.minute.add(now)
        limits.hour.add(now)
        return None

    def _penalty(
        self,
        limits: LoginLimits,
        wait: float,
        now: float,
        captcha: bool = False,
        block: bool = True,
    ) -> Verdict:
        seconds = max(1, math.ceil(wait))
        if block:
            limits.penalty_until = max(limits.penalty_until, now + seconds)
        payload: dict[str, Any] = {
            "p-ticket": self._ticket(limits, max(limits.penalty_until, now + seconds)),
            "p-time": seconds,
        }
        if captcha:
            payload["p-captcha"] = True
        return Verdict(200, payload, "penalty")

    def penalty(self, user_id: int | str, seconds: float, now: float) -> Verdict:
        """A penalty ticket that is not a violation (the ``penalty storm`` fault)."""
        limits = self._login(user_id)
        due = now + max(0.0, seconds)
        payload = {"p-ticket": self._ticket(limits, due), "p-time": math.ceil(seconds)}
        return Verdict(200, payload, "storm")

    def redeem(self, user_id: int | str, ticket: str | None, now: float) -> bool:
        """Consume a due ticket of the login (used by the penalty-storm fault)."""
        if ticket is None:
            return False
        limits = self.logins.get(user_id)
        if limits is None:
            return False
        due = limits.tickets.get(ticket)
        if due is None or now < due:
            return False
        del limits.tickets[ticket]
        return True

    # ------------------------------------------------------------------ per endpoint

    def _endpoint_window(self, key: int | str, endpoint: str, limit: int) -> Window:
        window = self.endpoints.get((key, endpoint))
        if window is None:
            window = self.endpoints[(key, endpoint)] = Window(limit, self.config.hour_s)
        return window

    def check_endpoint(
        self, key: int | str, endpoint: str, now: float, transport: str
    ) -> Verdict | None:
        """Refuse a request to an endpoint whose own limit is used up (not counted here)."""
        spec = self.config.endpoint_limit(endpoint)
        if spec is None:
            return None
        window = self._endpoint_window(key, endpoint, spec[0])
        wait = window.wait(now)
        if wait <= 0:
            return None
        self.violation(key, endpoint, "endpoint", now, transport)
        limits = self._login(key)
        captcha = endpoint == "auth/accesstokenrequest"
        seconds = max(wait, ENDPOINT_BACKOFF_S.get(endpoint, 0.0))
        return self._penalty(limits, seconds, now, captcha, block=False)

    def count_endpoint(self, key: int | str, endpoint: str, failed: bool, now: float) -> None:
        """Count a handled request toward its endpoint limit (failures, or all)."""
        spec = self.config.endpoint_limit(endpoint)
        if spec is None or (spec[1] and not failed):
            return
        self._endpoint_window(key, endpoint, spec[0]).add(now)

    def configure(self, config: LimitConfig) -> None:
        """Apply new limits to every login (counts so far are kept)."""
        self.config = config
        for limits in self.logins.values():
            limits.minute.limit, limits.minute.span = config.per_minute, config.minute_s
            limits.hour.limit, limits.hour.span = config.per_hour, config.hour_s
        for (_, endpoint), window in self.endpoints.items():
            spec = config.endpoint_limit(endpoint)
            window.limit, window.span = (spec[0] if spec else 0), config.hour_s

    def reset(self) -> None:
        """Forget all windows, penalties, lockouts and violations."""
        self.logins.clear()
        self.endpoints.clear()
        self.violations.clear()
        self.violation_count = 0
        self.by_login.clear()
