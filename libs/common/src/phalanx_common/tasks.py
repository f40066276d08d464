"""Stopping background tasks so that they really stop.

``task.cancel(); await task`` waits forever when the cancellation is lost inside the task, and
on Python 3.11 it can be: ``asyncio.wait_for`` (used by nats-py for every request) returns the
inner result and drops a cancellation that arrives as the inner future completes. The task then
carries on — a lease renewer kept renewing its lease, and the intent that held it never ended
(the chaos test's stalled login, issue 10). :func:`cancel_and_wait` repeats the cancellation
until the task has ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait"]

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


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
