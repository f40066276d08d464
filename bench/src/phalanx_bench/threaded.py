"""The whole system (:func:`phalanx_bench.inprocess.running_system`) on its own event loop in a
background thread, so synchronous drivers (hypothesis' stateful tests, plain HTTP clients) can
use it: HTTP goes to its real ports, and :meth:`ThreadedSystem.run` runs a coroutine on its loop
(e.g. to read the simulator's state consistently)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from phalanx_bench.inprocess import RunningSystem, running_system

__all__ = ["ThreadedSystem"]

T = TypeVar("T")


class ThreadedSystem:
    """Starts the system on a private loop; :meth:`close` stops it and the loop.

    Args:
        nats_url: A JetStream-enabled NATS server.
        redis_url: A Redis server.
        options: Passed on to :func:`running_system` (shards, executors, settings).
    """

    def __init__(self, nats_url: str, redis_url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="phalanx-system", daemon=True
        )
        self._thread.start()
        self._stack = AsyncExitStack()
        try:
            self.system: RunningSystem = self.run(
                self._stack.enter_async_context(running_system(nats_url, redis_url, **options)),
                timeout_s=120,
            )
        except BaseException:
            self._stop_loop()
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        """Run ``coro`` on the system's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def close(self) -> None:
        """Stop every service, then the loop and its thread."""
        try:
            self.run(self._stack.aclose(), timeout_s=60)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._loop.is_running():
            self._loop.close()
