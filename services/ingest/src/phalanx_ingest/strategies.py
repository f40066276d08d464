"""Strategies: secrets, and the in-memory directory the webhook hot path reads.

A strategy's secret is shown once, when it is created, and stored only as its SHA-256 hex digest
in :class:`~phalanx_common.records.StrategyRecord` (``Buckets.STRATEGIES``, key = strategy id).

:class:`StrategyDirectory` loads the bucket at start-up and follows it with a KV watch, so the
webhook path answers from memory. A strategy it has not seen yet (created a moment ago through
another ingest replica) is looked up in KV once and then remembered; unknown ids therefore cost
one KV read, which only unauthenticated junk pays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Callable

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from phalanx_common.codec import decode, encode
from phalanx_common.errors import PhalanxError
from phalanx_common.records import StrategyRecord
from phalanx_common.subjects import safe_token
from phalanx_common.tasks import cancel_and_wait

__all__ = [
    "StrategyDirectory",
    "StrategyLookupError",
    "hash_secret",
    "new_secret",
    "new_strategy_id",
    "secret_matches",
]

log = logging.getLogger(__name__)


class StrategyLookupError(PhalanxError):
    """A strategy could not be looked up because KV is unreachable (not: it does not exist)."""


def new_strategy_id() -> str:
    """A fresh strategy id (a UUID, like TradersPost's webhook uuid; a valid subject token)."""
    return str(uuid.uuid4())


def new_secret() -> str:
    """A fresh webhook secret: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest under which a secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(record: StrategyRecord, secret: str, now_ns: int = 0) -> bool:
    """Whether ``secret`` is the strategy's secret, or its previous one still in its grace period
    (constant-time comparisons of the digests; both are always compared)."""
    digest = hash_secret(secret).encode()
    current = hmac.compare_digest(digest, record.secret_sha256.encode())
    previous = hmac.compare_digest(digest, (record.previous_secret_sha256 or "-").encode())
    return current or (previous and now_ns < record.previous_secret_expires_ns)


class StrategyDirectory:
    """Strategies by id, kept in memory and in step with the ``strategies`` KV bucket.

    Args:
        kv: The bound ``Buckets.STRATEGIES`` bucket.
        lookup_timeout_s: Bound on the KV read for a strategy not in memory.
    """

    def __init__(self, kv: KeyValue, lookup_timeout_s: float = 1.0) -> None:
        self._kv = kv
        self._lookup_timeout_s = lookup_timeout_s
        self._records: dict[str, StrategyRecord] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._loaded = asyncio.Event()

    async def start(self, timeout_s: float = 10.0) -> None:
        """Load every strategy, then keep following changes in the background.

        Raises:
            TimeoutError: if the initial load does not finish within ``timeout_s``.
        """
        self._watcher = await self._kv.watchall()
        self._task = asyncio.create_task(self._follow(self._watcher), name="strategies:watch")
        await asyncio.wait_for(self._loaded.wait(), timeout_s)
        log.info("strategy directory loaded (%d strategies)", len(self._records))

    async def stop(self) -> None:
        """Stop following the bucket (idempotent)."""
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]
            self._watcher = None
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    def get(self, strategy_id: str) -> StrategyRecord | None:
        """The strategy from memory, or ``None``."""
        return self._records.get(strategy_id)

    async def lookup(self, strategy_id: str) -> StrategyRecord | None:
        """The strategy from memory, else from KV once (then remembered), else ``None``.

        Ids that cannot be a KV key or subject token are never looked up.

        Raises:
            StrategyLookupError: if the id is not in memory and KV cannot be asked.
        """
        record = self._records.get(strategy_id)
        if record is not None:
            return record
        try:
            safe_token(strategy_id)
        except ValueError:
            return None
        try:
            entry = await asyncio.wait_for(self._kv.get(strategy_id), self._lookup_timeout_s)
        except KeyNotFoundError:
            return None
        except (NatsError, TimeoutError, OSError) as exc:
            # Not "unknown": a 404 would stop TradingView from resending a valid signal.
            log.warning("strategy lookup in KV failed: %r", exc)
            raise StrategyLookupError(strategy_id) from exc
        if entry.value is None:
            return None
        record = decode(entry.value, StrategyRecord)
        self._records[strategy_id] = record
        return record

    async def create(self, record: StrategyRecord) -> None:
        """Store a new strategy in KV and in memory (usable at once by this process).

        Raises:
            nats.js.errors.KeyWrongLastSequenceError: if the id already exists.
        """
        await self._kv.create(record.strategy_id, encode(record))
        self._records[record.strategy_id] = record

    async def update(
        self, strategy_id: str, change: Callable[[StrategyRecord], StrategyRecord]
    ) -> StrategyRecord | None:
        """Apply ``change`` to the stored strategy with compare-and-set (retried on a conflict).

        Returns the new record, or ``None`` if the strategy does not exist.
        """
        for _ in range(10):
            try:
                entry = await self._kv.get(strategy_id)
            except KeyNotFoundError:
                return None
            if entry.value is None or entry.revision is None:
                return None
            record = change(decode(entry.value, StrategyRecord))
            try:
                await self._kv.update(strategy_id, encode(record), last=entry.revision)
            except KeyWrongLastSequenceError:
                continue
            self._records[strategy_id] = record
            return record
        raise StrategyLookupError(strategy_id)

    def all(self) -> list[StrategyRecord]:
        """Every known strategy, by name then id."""
        return sorted(self._records.values(), key=lambda r: (r.name, r.strategy_id))

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # end of the initial values
                self._loaded.set()
                continue
            self._apply(entry)

    def _apply(self, entry: KeyValue.Entry) -> None:
        if entry.operation in (KV_DEL, KV_PURGE) or entry.value is None:
            self._records.pop(entry.key, None)
            return
        try:
            self._records[entry.key] = decode(entry.value, StrategyRecord)
        except msgspec.DecodeError as exc:
            log.error("ignoring undecodable strategy %r: %s", entry.key, exc)
