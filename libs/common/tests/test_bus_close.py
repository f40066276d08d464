"""``Bus.close`` when nats-py's own close is cancelled under it (the server stopped at the same
moment, as when a whole system is stopped at once): the bus is closed, the service's stop goes
on; a cancellation of the caller itself still propagates. The client is a stub: nats-py
cancelling its close waiter is a race that cannot be staged reliably with a real server."""

from __future__ import annotations

import asyncio

import pytest

from phalanx_common.bus import Bus


class _Client:
    is_closed = False
    is_connected = False

    def __init__(self, close_takes_s: float = 0.0) -> None:
        self.close_takes_s = close_takes_s

    def jetstream(self, **_options: object) -> object:
        return object()

    async def close(self) -> None:
        await asyncio.sleep(self.close_takes_s)
        raise asyncio.CancelledError  # what nats-py's transport.wait_closed raised


async def test_a_close_cancelled_inside_nats_py_still_returns() -> None:
    bus = Bus(_Client(), "nats://127.0.0.1:1", 1.0)  # type: ignore[arg-type]
    await bus.close(timeout_s=1.0)  # raised CancelledError before: the ledger exited rc 1


async def test_a_cancelled_caller_is_still_cancelled() -> None:
    bus = Bus(_Client(close_takes_s=5.0), "nats://127.0.0.1:1", 1.0)  # type: ignore[arg-type]
    closing = asyncio.ensure_future(bus.close(timeout_s=10.0))
    await asyncio.sleep(0.05)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
