"""Which replicas are alive, and so which shards each works (ADR-0003).

Every replica writes a heartbeat ``replica.<ordinal>`` (expiry ``lease_ttl_s`` ahead) into the
``shard_leases`` bucket every ``lease_renew_s`` and reads everyone's. Shards are dealt
round-robin over the *live* ordinals, so with every replica up each owns ``s mod R == r``; when
one stops heartbeating, the survivors take its shards within about ``lease_ttl_s``, and give
them back when it returns. For a moment two replicas may both consume a shard: that is safe,
because intents are claimed with owner leases and every send re-checks the claim (ADR-0050), and
budgets live in Redis (ADR-0004).

Liveness never depends on how busy the replica is (ADR-0050): the heartbeat has its own task,
and rebalancing (which stops consumers and warms logins, and may take long) runs in another,
so a replica draining a slow shard keeps its heartbeat alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.js.kv import KeyValue

from phalanx_common.clock import Clock
from phalanx_common.codec import encode
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import ReplicaHeartbeat
from phalanx_common.tasks import cancel_and_wait

__all__ = ["Membership", "assign_shards"]

log = logging.getLogger(__name__)


def assign_shards(live: list[int], ordinal: int, shards: int) -> list[int]:
    """The shards ``ordinal`` works when ``live`` ordinals are up (itself always counted)."""
    members = sorted(set(live) | {ordinal})
    index = members.index(ordinal)
    return [s for s in range(shards) if s % len(members) == index]


class Membership:
    """Heartbeats this replica and tells it, on every change, which shards to work."""

    def __init__(
        self,
        *,
        kv: KeyValue,
        mirror: KvMirror[ReplicaHeartbeat],
        clock: Clock,
        ordinal: int,
        owner: str,
        shards: int,
        lease_ttl_s: float,
        lease_renew_s: float,
        on_assignment: Callable[[list[int]], Awaitable[None]],
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self._kv = kv
        self._connected = connected
        self._mirror = mirror
        self._clock = clock
        self._ordinal = ordinal
        self._owner = owner
        self._shards = shards
        self._ttl_ns = int(lease_ttl_s * 1e9)
        self._renew_s = lease_renew_s
        self._on_assignment = on_assignment
        self._tasks: list[asyncio.Task[None]] = []
        self.assigned: list[int] = []

    def live(self) -> list[int]:
        """Ordinals whose heartbeat has not expired."""
        now = self._clock.time_ns()
        return sorted(
            r.ordinal
            for k, r in self._mirror.items().items()
            if k.startswith("replica.") and r.expires_ns > now
        )

    async def beat(self) -> None:
        """Write this replica's heartbeat."""
        record = ReplicaHeartbeat(
            ordinal=self._ordinal,
            owner=self._owner,
            expires_ns=self._clock.time_ns() + self._ttl_ns,
        )
        await self._kv.put(f"replica.{self._ordinal}", encode(record))

    async def refresh(self) -> None:
        """Recompute the assignment and report it if it changed."""
        assignment = assign_shards(self.live(), self._ordinal, self._shards)
        if assignment != self.assigned:
            log.info(
                "replica %d now works shards %s (live: %s)", self._ordinal, assignment, self.live()
            )
            self.assigned = assignment
            await self._on_assignment(assignment)

    async def start(self) -> None:
        """Heartbeat once, take the first assignment, then keep both going, each on its own task."""
        await self.beat()
        self._tasks.append(
            asyncio.create_task(self._beat_loop(), name=f"heartbeat-r{self._ordinal}")
        )
        await self.refresh()
        self._tasks.append(
            asyncio.create_task(self._rebalance_loop(), name=f"rebalance-r{self._ordinal}")
        )

    async def stop_rebalancing(self) -> None:
        """Stop reacting to membership changes; the heartbeat goes on (graceful shutdown)."""
        for task in self._tasks[1:]:
            await cancel_and_wait(task)
        del self._tasks[1:]

    async def stop(self, leave: bool = True) -> None:
        """Stop heartbeating; with ``leave``, delete the heartbeat so others take over at once."""
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        if leave and not self._connected():
            # NATS already gone (everything stopping at once): the delete cannot land, and a
            # request on a reconnecting client does not even give up when cancelled. The
            # heartbeat simply expires.
            log.info("membership: not connected; heartbeat left to expire")
        elif leave:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kv.delete(f"replica.{self._ordinal}"), 2.0)

    async def _beat_loop(self) -> None:
        while True:
            await self._clock.sleep(self._renew_s)
            try:
                await self.beat()
            except Exception:
                log.exception("membership: heartbeat failed")

    async def _rebalance_loop(self) -> None:
        while True:
            await self._clock.sleep(self._renew_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("membership: rebalance failed")
