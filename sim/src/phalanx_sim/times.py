"""Wall-clock helpers: Tradovate timestamps (ISO 8601, UTC, milliseconds, ``Z``) and trade dates.

Formatting is cached per millisecond because the matching engine stamps many entities per order.
"""

from __future__ import annotations

import datetime as dt
import time

from phalanx_sim.entities import TradeDate

__all__ = ["VenueClock", "iso_from_epoch"]

# CME Globex sessions roll at 17:00 Chicago time; 22:00 UTC is a fixed approximation of that.
_SESSION_ROLL = dt.timedelta(hours=2)


def iso_from_epoch(seconds: float) -> str:
    """Format epoch seconds as ``2025-01-31T14:03:07.123Z``."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VenueClock:
    """Current time as the venue reports it (override :meth:`time` for a fake clock)."""

    def __init__(self) -> None:
        self._ms = -1
        self._iso = ""
        self._day = -1
        self._trade_date = TradeDate(year=1970, month=1, day=1)

    def time(self) -> float:
        """Epoch seconds."""
        return time.time()

    def now_iso(self) -> str:
        """The current time as a Tradovate timestamp string."""
        now = self.time()
        ms = int(now * 1000)
        if ms != self._ms:
            self._ms = ms
            self._iso = iso_from_epoch(now)
        return self._iso

    def trade_date(self) -> TradeDate:
        """The current CME trade date (the session that started at the last 17:00 CT)."""
        now = self.time()
        day = int((now + _SESSION_ROLL.total_seconds()) // 86400)
        if day != self._day:
            self._day = day
            date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
            self._trade_date = TradeDate(year=date.year, month=date.month, day=date.day)
        return self._trade_date
