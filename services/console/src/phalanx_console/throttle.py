"""Sign-in throttling: a client address with too many wrong passwords waits (ADR-0131).

At most ``max_failures`` failed sign-ins per address in any ``window_s``; past that every
attempt from that address is refused (429) until its oldest failure leaves the window. Only
the address is throttled, so someone guessing cannot lock the real operator out from theirs.
"""

from __future__ import annotations

from collections import deque

from phalanx_common.clock import Clock

__all__ = ["SignInThrottle"]

_MAX_ADDRESSES = 10_000


class SignInThrottle:
    """Failed sign-ins per client address.

    Args:
        clock: Source of time.
        max_failures: Failures allowed in a window.
        window_s: The window.
    """

    def __init__(self, clock: Clock, max_failures: int = 10, window_s: float = 900.0) -> None:
        self._clock = clock
        self._max = max_failures
        self._window_ns = int(window_s * 1e9)
        self._failures: dict[str, deque[int]] = {}

    def _recent(self, address: str, now: int) -> deque[int]:
        failures = self._failures.get(address)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self._window_ns:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def retry_after_s(self, address: str) -> float:
        """0 when ``address`` may try now, else the seconds until it may."""
        now = self._clock.time_ns()
        failures = self._recent(address, now)
        if len(failures) < self._max:
            return 0.0
        return (failures[0] + self._window_ns - now) / 1e9

    def failed(self, address: str) -> None:
        """Record a failed sign-in from ``address``."""
        now = self._clock.time_ns()
        failures = self._recent(address, now)
        if address not in self._failures:
            if len(self._failures) >= _MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))
            self._failures[address] = failures
        failures.append(now)

    def succeeded(self, address: str) -> None:
        """Forget the failures of ``address``."""
        self._failures.pop(address, None)
