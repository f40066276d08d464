"""Wait for asynchronous effects instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually"]

T = TypeVar("T")


async def eventually(  # noqa: ASYNC109 - a deadline for polling, not a cancel scope
    probe: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``probe`` until it returns a truthy value, and return that value.

    Raises:
        AssertionError: if it is still falsy after ``timeout`` seconds, with the last value.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        result = probe()
        value: T = await result if inspect.isawaitable(result) else result
        if value:
            return value
        last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last value: {last!r})")
        await asyncio.sleep(interval)
