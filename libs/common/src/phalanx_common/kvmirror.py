"""An in-memory mirror of a KV bucket, kept current by a watch, so hot paths read no KV."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from phalanx_common.codec import decode
from phalanx_common.tasks import OwnedTasks

__all__ = ["KvMirror"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=msgspec.Struct)


class KvMirror(Generic[T]):
    """Mirror of one bucket: ``key -> record``, plus optional change callbacks.

    ``decoder`` replaces the JSON decoding of ``type_`` (e.g.
    :func:`phalanx_common.crypto.token_decoder` opens sealed tokens); it signals an unusable value
    with ``msgspec.DecodeError``, which is logged and skipped.

    :meth:`start` returns once the bucket's current values are loaded.
    """

    def __init__(
        self,
        kv: KeyValue,
        type_: type[T],
        name: str = "",
        *,
        decoder: Callable[[bytes], T] | None = None,
    ) -> None:
        self._kv = kv
        self._type = type_
        self._decoder = decoder
        self._name = name or type_.__name__
        self._items: dict[str, T] = {}
        self._revisions: dict[str, int] = {}
        self._listeners: list[Callable[[str, T | None], None]] = []
        self._ready = asyncio.Event()
        self._tasks = OwnedTasks("kvmirror")
        self._watcher: KeyValue.KeyWatcher | None = None

    def on_change(self, listener: Callable[[str, T | None], None]) -> None:
        """Call ``listener(key, record_or_None)`` on every change after start-up values."""
        self._listeners.append(listener)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Start watching and wait until the current values are loaded."""
        self._watcher = await self._kv.watchall()
        self._tasks.spawn(self._run(), f"kvmirror:{self._name}")
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def stop(self) -> None:
        """Stop watching (idempotent)."""
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]
            self._watcher = None
        await self._tasks.stop()

    def get(self, key: str) -> T | None:
        """The record under ``key``, or None."""
        return self._items.get(key)

    def revision(self, key: str) -> int | None:
        """The KV revision of ``key`` as last seen."""
        return self._revisions.get(key)

    def items(self) -> dict[str, T]:
        """A snapshot of every record."""
        return dict(self._items)

    def values(self) -> list[T]:
        """Every record."""
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    async def _run(self) -> None:
        assert self._watcher is not None
        async for entry in self._watcher:
            if entry is None:
                self._ready.set()
                continue
            key = entry.key
            record: T | None
            if entry.operation in (KV_DEL, KV_PURGE) or not entry.value:
                self._items.pop(key, None)
                self._revisions.pop(key, None)
                record = None
            else:
                try:
                    if self._decoder is not None:
                        record = self._decoder(entry.value)
                    else:
                        record = decode(entry.value, self._type)
                except msgspec.DecodeError as exc:
                    log.error("%s: ignoring undecodable value at %s: %s", self._name, key, exc)
                    continue
                self._items[key] = record
                self._revisions[key] = entry.revision or 0
            for listener in self._listeners:
                try:
                    listener(key, record)
                except Exception:
                    log.exception("%s: change listener failed for %s", self._name, key)
