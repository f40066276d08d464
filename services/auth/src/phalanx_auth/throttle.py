"""How often auth may call the venue for a login: pauses, failed logins, renewals per hour.

Every number here is in monotonic seconds of the injected clock. A pause (after a time
penalty, a captcha or a lockout) only ever moves later while it runs; the failure and renewal
budgets are rolling windows of an hour.
"""

from __future__ import annotations

from collections import deque

__all__ = ["LOCKOUT_S", "LoginThrottle", "RollingWindow"]

LOCKOUT_S = 3600.0
"""How long a login's venue calls stay paused after HTTP 423/429 (retrying extends a lockout)."""

HOUR_S = 3600.0


class RollingWindow:
    """Timestamps in a rolling window (monotonic seconds): an event at ``t`` counts while
    ``now - span_s < t``."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        """How many events lie within the window ending at ``now``."""
        while self._times and self._times[0] <= now - self.span_s:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> None:
        """Record an event at ``now`` (non-decreasing times)."""
        self._times.append(now)


class LoginThrottle:
    """Per login: until when venue calls are paused, failed logins and renewals in the last hour."""

    def __init__(self) -> None:
        self._paused_until: dict[str, float] = {}
        self._failures: dict[str, RollingWindow] = {}
        self._renewals: dict[str, RollingWindow] = {}

    def paused_for(self, login_id: str, now: float) -> float:
        """Seconds the login's venue calls stay paused from ``now`` (0 when not paused)."""
        return max(0.0, self._paused_until.get(login_id, 0.0) - now)

    def pause_until(self, login_id: str, until: float) -> None:
        """Pause the login's venue calls until ``until`` (replaces the current pause, as before)."""
        self._paused_until[login_id] = until

    def clear(self, login_id: str) -> None:
        """Forget the login's pause (a fresh connect by a person)."""
        self._paused_until.pop(login_id, None)

    def failures(self, login_id: str) -> RollingWindow:
        """The login's failed logins in the last hour."""
        window = self._failures.get(login_id)
        if window is None:
            window = self._failures[login_id] = RollingWindow(HOUR_S)
        return window

    def renewals(self, login_id: str) -> RollingWindow:
        """The login's renewal attempts in the last hour."""
        window = self._renewals.get(login_id)
        if window is None:
            window = self._renewals[login_id] = RollingWindow(HOUR_S)
        return window
