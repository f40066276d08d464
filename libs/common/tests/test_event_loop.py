"""The event loop a service runs on is chosen by name (ADR-0145)."""

from __future__ import annotations

import asyncio

import pytest

from phalanx_common.lifecycle import loop_factory


def test_asyncio_is_the_standard_loop() -> None:
    assert loop_factory("asyncio") is None


def test_uvloop_runs_coroutines_on_a_uvloop_loop() -> None:
    uvloop = pytest.importorskip("uvloop")
    factory = loop_factory("uvloop")
    assert factory is not None

    async def running_loop() -> asyncio.AbstractEventLoop:
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.run(running_loop()), uvloop.Loop)


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        loop_factory("trio")
