"""Many permit requests in one Redis script call, evaluated in order (ADR-0180).

The limiter's requests that arrive together (in one event-loop turn, or while a call is in
flight) wait in a list; one flush task sends them as a single call of :data:`ACQUIRE_MANY`,
which runs the acquire step of ADR-0004/ADR-0056 for each request in turn. A script runs
atomically, so request ``i`` sees exactly what requests ``1..i-1`` recorded: the results are
those of the same requests made one after another. The generation check (ADR-0056) runs once,
at the top of the call, as it would for the first of those sequential calls; the later ones
would have found the generation they had just been told.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "ACQUIRE_MANY",
    "MAX_KEYS",
    "MAX_REQUESTS",
    "BatchReply",
    "PermitBatcher",
    "PermitRequest",
    "decode_reply",
    "encode_call",
]

MAX_REQUESTS = 256  # requests per script call: bounds how long one call holds Redis
MAX_KEYS = 2048  # keys per script call (a request is never split; the first always goes)

ACQUIRE_MANY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = ARGV[1]
-- The generation tells a Redis that lost its data (restarted empty) from one that did not: a
-- limiter that saw another generation (or none now) knows every window before it is unknown.
local gen = redis.call('GET', KEYS[2])
if not gen then
  gen = ARGV[2] .. ':' .. now
  redis.call('SET', KEYS[2], gen)
end
if known ~= '' and known ~= gen then
  local created = tonumber(string.match(gen, ':(%d+)$'))
  local lost = tonumber(redis.call('GET', KEYS[3]) or '-1')
  if created > lost then redis.call('SET', KEYS[3], created) end
end
local lost = tonumber(redis.call('GET', KEYS[3]) or '-1')

-- One request: its spec p = {cost, n, nb, then (limit, window ms, budget) per window}, its
-- windows KEYS[k+1..k+n] and blocks KEYS[k+n+1..k+n+nb]. Returns granted (1, 0, or -1: never
-- grantable) and the wait.
local function acquire(p, k)
  local cost, n, nb = tonumber(p[1]), tonumber(p[2]), tonumber(p[3])
  local wait = 0
  for i = k + n + 1, k + n + nb do
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > wait then wait = ttl end
  end
  if wait > 0 then return 0, wait end
  for i = 1, n do
    local limit = tonumber(p[1 + 3 * i])
    local window = tonumber(p[2 + 3 * i])
    local group = p[3 + 3 * i]
    local key = KEYS[k + i]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    if cost > limit then return -1, 0 end
    -- Requests before the loss that may still be in this window: at most what the budget's
    -- windows allow in the part of this window that lies before the loss (ADR-0056).
    local unseen = 0
    local change = 0
    if lost >= 0 and now - lost < window then
      local d = window - (now - lost)
      unseen = limit
      change = d
      for j = 1, n do
        if p[3 + 3 * j] == group then
          local wj = tonumber(p[2 + 3 * j])
          local m = math.ceil(d / wj)
          local bound = tonumber(p[1 + 3 * j]) * m
          if bound < unseen then unseen = bound end
          local step = d - wj * (m - 1)
          if step < change then change = step end
        end
      end
    end
    if count + cost > limit then
      local idx = count + cost - limit - 1
      local oldest = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
      local w = tonumber(oldest[2]) + window - now + 1
      if w > wait then wait = w end
    elseif count + unseen + cost > limit then
      if change + 1 > wait then wait = change + 1 end
    end
  end
  if wait > 0 then return 0, wait end
  local seq = redis.call('INCRBY', KEYS[1], cost)
  for i = 1, n do
    local key = KEYS[k + i]
    for c = 1, cost do
      redis.call('ZADD', key, now, now .. ':' .. (seq - c))
    end
    redis.call('PEXPIRE', key, tonumber(p[2 + 3 * i]))
  end
  return 1, 0
end

local out = {gen}
local k = 3
for r = 3, #ARGV do
  local p = {}
  for word in string.gmatch(ARGV[r], '%S+') do p[#p + 1] = word end
  local granted, wait = acquire(p, k)
  out[#out + 1] = granted
  out[#out + 1] = wait
  k = k + tonumber(p[2]) + tonumber(p[3])
end
return out
"""


@dataclass(frozen=True)
class PermitRequest:
    """One ``try_acquire`` as the script takes it: its keys (its windows', then its budgets'
    block keys) and its spec, one string: ``cost n nb`` then ``limit window_ms budget`` per
    window: one argument instead of 3 + 3n (redis-py packs each argument on its own; that was
    the largest part of a batched call's CPU here)."""

    keys: tuple[str, ...]
    spec: str

    @classmethod
    def of(
        cls, cost: int, windows: Sequence[tuple[str, int, int, int]], blocks: Sequence[str]
    ) -> PermitRequest:
        """From ``cost``, its windows ``(key, limit, window ms, budget index)`` and its block
        keys."""
        spec = [f"{cost} {len(windows)} {len(blocks)}"]
        spec += [f"{limit} {window_ms} {group}" for _, limit, window_ms, group in windows]
        return cls((*(w[0] for w in windows), *blocks), " ".join(spec))

    @property
    def key_count(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class BatchReply:
    """What one call answered: Redis's generation and ``(granted, wait ms)`` per request."""

    generation: str
    results: list[tuple[int, int]]


def encode_call(
    shared_keys: Sequence[str], known: str, token: str, requests: Sequence[PermitRequest]
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of one :data:`ACQUIRE_MANY` call (``shared_keys``: seq, generation, lost)."""
    keys = list(shared_keys)
    args = [known, token]
    for request in requests:
        keys += request.keys
        args.append(request.spec)
    return keys, args


def decode_reply(reply: Sequence[object]) -> BatchReply:
    generation = reply[0]
    text = generation.decode() if isinstance(generation, bytes) else str(generation)
    numbers = [int(str(v)) for v in reply[1:]]
    return BatchReply(text, list(zip(numbers[0::2], numbers[1::2], strict=True)))


Run = Callable[[Sequence[PermitRequest]], Awaitable[list[tuple[int, int]]]]


@dataclass
class _Pending:
    request: PermitRequest
    result: asyncio.Future[tuple[int, int]]


class PermitBatcher:
    """Collects requests and sends them in calls of at most ``max_requests`` (and about
    ``max_keys`` keys), one call in flight at a time. ``run`` makes one call and returns one
    ``(granted, wait ms)`` per request; whatever it raises fails every request of that call."""

    def __init__(self, run: Run, max_requests: int = MAX_REQUESTS, max_keys: int = MAX_KEYS):
        self._run = run
        self._max_requests = max_requests
        self._max_keys = max_keys
        self._pending: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, request: PermitRequest) -> tuple[int, int]:
        """``(granted, wait ms)`` for ``request``, evaluated after every request submitted
        before it (by this process)."""
        loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.get_loop() is not loop:
            self._flusher = None  # its loop closed under it: what it held went with the loop
            self._pending.clear()
        result: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._pending.append(_Pending(request, result))
        if self._flusher is None:
            # A fresh context: the calls serve every caller alike, so none of them belongs in
            # the trace (or the log context) of the caller that happened to start the task.
            self._flusher = loop.create_task(
                self._flush(), name="permits:batch", context=contextvars.Context()
            )
        return await result

    def _take(self) -> list[_Pending]:
        """The next call's requests, oldest first; those whose caller gave up are dropped."""
        batch: list[_Pending] = []
        keys = 0
        while self._pending and len(batch) < self._max_requests:
            head = self._pending[0]
            if batch and keys + head.request.key_count > self._max_keys:
                break
            self._pending.popleft()
            if not head.result.done():
                batch.append(head)
                keys += head.request.key_count
        return batch

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                if batch:
                    await self._send(batch)
        finally:
            self._flusher = None
            for left in self._pending:  # only when cancelled (the loop is closing)
                left.result.cancel()
            self._pending.clear()

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            results = await self._run([p.request for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} permit results for {len(batch)} requests")
        except asyncio.CancelledError:
            for p in batch:
                p.result.cancel()
            raise
        except Exception as exc:  # fail closed: every request of the call gets the error
            for p in batch:
                if not p.result.done():
                    p.result.set_exception(exc)
            return
        for p, result in zip(batch, results, strict=True):
            if not p.result.done():
                p.result.set_result(result)
