"""The durable outbox: signals accepted while JetStream is unreachable (ADR-0010).

One SQLite database in WAL mode with ``synchronous=FULL`` under ``PHALANX_INGEST_OUTBOX_DIR``:
an :meth:`Outbox.add` returns only after the row is committed and fsync'd, so the 2xx that
follows it is backed by the local disk. A background :class:`OutboxDrainer` publishes the rows in
the order they were written, each with ``Nats-Msg-Id`` = its signal id, as soon as NATS is back
(also after a restart of the process: rows left behind are published at start). JetStream's
duplicate window then makes a row that was published twice (a publish whose ack was lost) count
once. Each row keeps the trace context (``traceparent``/``tracestate``) of the webhook that
brought it, so its publish, however late, continues the webhook's trace (ADR-0070).

The directory is locked (``flock``) by one process: two ingest replicas must never drain one
outbox. All SQLite work runs on one dedicated thread, so the event loop never blocks on fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from phalanx_common.clock import Clock
from phalanx_common.tasks import cancel_and_wait

__all__ = ["Outbox", "OutboxDrainer", "OutboxLockedError", "OutboxRow"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    data BLOB NOT NULL,
    created_ns INTEGER NOT NULL,
    published_ns INTEGER,
    headers TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE published_ns IS NULL;
"""
# Outboxes written before rows kept their trace context gain the column (empty context).
_ADD_HEADERS = "ALTER TABLE outbox ADD COLUMN headers TEXT NOT NULL DEFAULT '{}'"


class OutboxLockedError(RuntimeError):
    """Another process holds the outbox directory."""


@dataclass(frozen=True)
class OutboxRow:
    """One signal waiting for JetStream, with the trace context it was accepted in."""

    seq: int
    signal_id: str
    subject: str
    data: bytes
    headers: dict[str, str]


class Outbox:
    """A SQLite outbox in ``directory`` (created if needed).

    Args:
        directory: Where ``outbox.sqlite3`` and its lock file live.
        clock: Source of ``created_ns`` / ``published_ns``.
    """

    def __init__(self, directory: str | Path, clock: Clock) -> None:
        self.directory = Path(directory)
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._lock_file: IO[bytes] | None = None
        self.pending = 0

    async def open(self) -> None:
        """Lock the directory, open the database and count the rows still to publish.

        Raises:
            OutboxLockedError: if another process holds the directory.
        """
        await self._run(self._open)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = (self.directory / "outbox.lock").open("wb")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise OutboxLockedError(f"outbox {self.directory} is used by another process") from None
        self._lock_file = lock
        db = sqlite3.connect(self.directory / "outbox.sqlite3", check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(outbox)")}
        if "headers" not in columns:
            db.execute(_ADD_HEADERS)
        db.commit()
        self._db = db
        (count,) = db.execute("SELECT count(*) FROM outbox WHERE published_ns IS NULL").fetchone()
        self.pending = int(count)
        if self.pending:
            log.warning("outbox %s holds %d unpublished signals", self.directory, self.pending)

    async def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        if self._db is not None:
            await self._run(self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    async def add(
        self, signal_id: str, subject: str, data: bytes, headers: dict[str, str] | None = None
    ) -> bool:
        """Write a signal (and the trace ``headers`` it goes with) and fsync it; ``False`` if
        this signal id is already in the outbox."""
        encoded = json.dumps(headers or {}, sort_keys=True)
        inserted = await self._run(lambda: self._add(signal_id, subject, data, encoded))
        if inserted:
            self.pending += 1
        return inserted

    def _add(self, signal_id: str, subject: str, data: bytes, headers: str) -> bool:
        db = self._conn()
        with db:  # one transaction: committed (and, with synchronous=FULL, fsync'd) on exit
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (signal_id, subject, data, created_ns, headers) "
                "VALUES (?, ?, ?, ?, ?)",
                (signal_id, subject, data, self._clock.time_ns(), headers),
            )
        return cursor.rowcount == 1

    async def next_pending(self, limit: int) -> list[OutboxRow]:
        """The oldest unpublished rows, in the order they were written."""
        return await self._run(lambda: self._next_pending(limit))

    def _next_pending(self, limit: int) -> list[OutboxRow]:
        rows = self._conn().execute(
            "SELECT seq, signal_id, subject, data, headers FROM outbox "
            "WHERE published_ns IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            OutboxRow(int(s), str(i), str(sub), bytes(d), _headers(h)) for s, i, sub, d, h in rows
        ]

    async def mark_published(self, seq: int) -> None:
        """Record that JetStream acknowledged a row."""
        changed = await self._run(lambda: self._mark(seq))
        if changed:
            self.pending = max(0, self.pending - 1)

    def _mark(self, seq: int) -> bool:
        db = self._conn()
        with db:
            cursor = db.execute(
                "UPDATE outbox SET published_ns = ? WHERE seq = ? AND published_ns IS NULL",
                (self._clock.time_ns(), seq),
            )
        return cursor.rowcount == 1

    async def purge(self, older_than_ns: int) -> int:
        """Delete published rows older than ``older_than_ns``; returns how many."""
        return await self._run(lambda: self._purge(older_than_ns))

    def _purge(self, older_than_ns: int) -> int:
        db = self._conn()
        with db:
            cursor = db.execute(
                "DELETE FROM outbox WHERE published_ns IS NOT NULL AND published_ns < ?",
                (older_than_ns,),
            )
        return int(cursor.rowcount)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("outbox is not open")
        return self._db

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)


def _headers(stored: object) -> dict[str, str]:
    """The stored trace headers of a row (empty when unreadable: the publish starts afresh)."""
    try:
        decoded = json.loads(str(stored or "{}"))
    except ValueError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(k): str(v) for k, v in decoded.items()}


class OutboxDrainer:
    """Publishes the outbox to JetStream, oldest first, whenever NATS is connected.

    Args:
        outbox: The open outbox.
        publish: Publishes one row and returns once JetStream acknowledged it (raises if not).
        connected: Whether NATS is connected right now.
        clock: For the retention purge.
        retention_s: Published rows older than this are deleted.
    """

    def __init__(
        self,
        outbox: Outbox,
        publish: Callable[[OutboxRow], Awaitable[None]],
        connected: Callable[[], bool],
        clock: Clock,
        retention_s: float,
        idle_poll_s: float = 0.25,
    ) -> None:
        self._outbox = outbox
        self._publish = publish
        self._connected = connected
        self._clock = clock
        self._retention_ns = int(retention_s * 1e9)
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def start(self) -> None:
        """Start draining in a background task."""
        self._task = asyncio.create_task(self._run(), name="outbox-drainer")

    def wake(self) -> None:
        """A row was added: drain now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop draining (rows not yet published stay in the outbox for the next start)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        last_purge = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)
            self._wake.clear()
            try:
                if self._outbox.pending and self._connected():
                    await self._drain()
                now = self._clock.time_ns()
                if now - last_purge > 60 * 1_000_000_000:
                    last_purge = now
                    await self._outbox.purge(now - self._retention_ns)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox drain failed; retrying")

    async def _drain(self) -> None:
        while self._connected():
            rows = await self._outbox.next_pending(100)
            if not rows:
                return
            for row in rows:
                try:
                    await self._publish(row)
                except Exception as exc:
                    log.warning("outbox: %s not published yet: %r", row.signal_id, exc)
                    return
                await self._outbox.mark_published(row.seq)
                self.published += 1
                log.info("outbox: published %s", row.signal_id)
