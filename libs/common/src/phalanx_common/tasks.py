"""Stopping background tasks so that they really stop.

``task.cancel(); await task`` waits forever when the cancellation is lost inside the task, and
on Python 3.11 it can be: ``asyncio.wait_for`` (used by nats-py for every request) returns the
inner result and drops a cancellation that arrives as the inner future completes. The task then
carries on — a lease renewer kept renewing its lease, and the intent that held it never ended
(the chaos test's stalled login, issue 10). :func:`cancel_and_wait` repeats the cancellation
until the task has ended.

:class:`OwnedTasks` is the one way a component runs long-lived background tasks (ADR-0176):
each is created with a name, the reference is kept (the event loop holds tasks weakly), an
exception that ends one is logged at once with the owner's and the task's name instead of
waiting for a ``stop`` that may never come, and ``stop`` cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["OwnedTasks", "cancel_and_wait", "every"]

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Future[Any] | None, retry_s: float = 0.5) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again every ``retry_s``.

    Whatever the task ended with (a result, an exception, a cancellation) is consumed.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
        if not task.done():
            log.warning("task %s ignored a cancellation; cancelling again", _name(task))
    if not task.cancelled():
        task.exception()  # retrieved: an exception here is not "never retrieved"


async def every(
    interval_s: float,
    step: Callable[[], Awaitable[object]],
    failed: Callable[[Exception], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``step`` now and then every ``interval_s`` until cancelled; a step that raises is
    handed to ``failed`` and the next one runs on time (a sampler's loop)."""
    while True:
        try:
            await step()
        except Exception as exc:
            failed(exc)
        await sleep(interval_s)


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


class OwnedTasks:
    """The named background tasks one component owns, stopped together.

    Args:
        owner: names the component in the log line of a task that failed.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: list[asyncio.Task[Any]] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task called ``name``, kept until :meth:`stop`."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self._tasks.append(task)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def names(self) -> list[str]:
        """The names of the tasks spawned since the last :meth:`stop`, in order."""
        return [task.get_name() for task in self._tasks]

    async def stop(self) -> None:
        """Cancel every task and wait until each has ended (idempotent)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_and_wait(task)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s: background task %s failed", self.owner, task.get_name(), exc_info=exc)
