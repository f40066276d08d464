"""Follows order outcomes on the bus: per signal, how many intents (accounts) have an outcome and
when the first and the last arrived (``OrderAccepted``/``OrderRejected``; ``OrderOutcomeUnknown``
is only counted, reconciliation follows it). A second outcome for the same intent is counted as
``duplicate`` and does not count as another account."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from phalanx_common.bus import server_urls

__all__ = ["OutcomeWatch"]


class _Outcome(msgspec.Struct):
    type: str
    signal_id: str = ""
    intent_id: str = ""
    reason: str = ""


@dataclass
class OutcomeWatch:
    """Subscribe with :meth:`start`; :meth:`wait` for a signal's outcomes on every account."""

    nats_url: str
    counts: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _nc: Client | None = None
    _sub: Subscription | None = None

    async def start(self) -> None:
        """Connect and subscribe to ``orders.>``."""
        decoder = msgspec.json.Decoder(_Outcome)

        async def on_msg(msg: Msg) -> None:
            event = decoder.decode(msg.data)
            if event.type == "OrderOutcomeUnknown":
                self.kinds[event.type] += 1
            if event.type in ("OrderAccepted", "OrderRejected"):
                now = time.perf_counter()
                if event.intent_id in self.seen:
                    self.kinds["duplicate"] += 1
                    return
                self.seen.add(event.intent_id)
                self.counts[event.signal_id] += 1
                self.kinds[event.type + (f":{event.reason}" if event.reason else "")] += 1
                self.first_seen.setdefault(event.signal_id, now)
                self.last_seen[event.signal_id] = now
                self._changed.set()

        self._nc = await nats.connect(server_urls(self.nats_url))
        self._sub = await self._nc.subscribe("orders.>", cb=on_msg)

    async def wait(self, signal_id: str, accounts: int, timeout_s: float = 180.0) -> float:
        """Wait until ``signal_id`` has ``accounts`` outcomes; return when the last arrived
        (``time.perf_counter()``)."""
        deadline = time.perf_counter() + timeout_s
        while self.counts[signal_id] < accounts and time.perf_counter() < deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), deadline - time.perf_counter())
        done = self.counts[signal_id]
        if done < accounts:
            raise RuntimeError(f"signal {signal_id}: {done}/{accounts} outcomes in {timeout_s}s")
        return self.last_seen[signal_id]

    async def stop(self) -> None:
        """Unsubscribe and disconnect."""
        if self._sub is not None:
            await self._sub.unsubscribe()
        if self._nc is not None:
            await self._nc.close()
