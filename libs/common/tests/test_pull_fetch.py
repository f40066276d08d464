"""A message published just after a pull request was given up waits for no fetch timeout.

Seen in the benchmark's soak: in every 30 s window a few signals took 0.4-0.9 s instead of
~30 ms. nats-py's ``fetch`` stops listening at its timeout while the server still holds its
request for a moment (the request reached the server later than it left the client); a message
published in that moment goes to the abandoned request, the next ``fetch`` reads it as its first
message and then waits out its own request before returning it. Here the client's bytes reach
the real nats-server 0.3 s late (a slow link), which makes the moment long enough to hit every
time; ``fetch_ready`` listens until the server has ended its request, so nothing is abandoned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlparse

import nats
import pytest
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from phalanx_common.pull_fetch import fetch_ready
from phalanx_testing.slow_link import slow_link

pytestmark = pytest.mark.integration

Fetch = Callable[[JetStreamContext.PullSubscription, int, float], Coroutine[Any, Any, list[Msg]]]


async def _nats_py_fetch(
    sub: JetStreamContext.PullSubscription, n: int, wait_s: float
) -> list[Msg]:
    try:
        return await sub.fetch(n, timeout=wait_s)
    except (TimeoutError, NatsTimeoutError):
        return []


COUNTERFACTUAL = pytest.param(
    _nats_py_fetch,
    id="nats-py-fetch",
    marks=pytest.mark.xfail(strict=True, reason="the abandoned request swallows the message"),
)


async def _next_after_publish(
    fetch: Fetch, sub: JetStreamContext.PullSubscription, js: JetStreamContext, data: bytes
) -> list[bytes]:
    """Start a fetch that may wait 30 s, publish ``data`` while it listens, and return what
    it brings; it must bring ``data`` at once (10 s: a generous bound, not a timing target)."""
    waiting = asyncio.create_task(fetch(sub, 64, 30.0))
    await asyncio.sleep(1.2)  # the fetch's requests have reached the server (0.3 s each way)
    await js.publish("pulls.x", data)
    try:
        got = await asyncio.wait_for(waiting, 10.0)
    finally:
        waiting.cancel()
    return [m.data for m in got]


@pytest.mark.parametrize("fetch", [pytest.param(fetch_ready, id="fetch_ready"), COUNTERFACTUAL])
async def test_no_message_waits_for_a_request_a_fetch_gave_up_on(
    nats_url: str, fetch: Fetch
) -> None:
    url = urlparse(nats_url)
    assert url.hostname is not None
    assert url.port is not None
    publisher = await nats.connect(nats_url)
    js = publisher.jetstream()
    await js.add_stream(name="PULLS", subjects=["pulls.>"])
    async with slow_link(url.hostname, url.port, delay_s=0.3) as port:
        consumer = await nats.connect(f"nats://127.0.0.1:{port}")
        try:
            sub = await consumer.jetstream().pull_subscribe("pulls.>", durable="d", stream="PULLS")
            # Nothing there. nats-py stops listening after 1 s; the server's "request timeout"
            # for it comes 0.3 s later and is read as the answer to the next fetch's request,
            # which then asks once more: a request nobody will end before it expires.
            assert await fetch(sub, 64, 1.0) == []
            assert await _next_after_publish(fetch, sub, js, b"one") == [b"one"]
            # The next message goes to that abandoned request, the oldest the server holds;
            # the fetch that reads it waits for its own request to end first (~30 s).
            assert await _next_after_publish(fetch, sub, js, b"two") == [b"two"]
        finally:
            await consumer.close()
            await publisher.close()


async def test_every_available_message_up_to_the_batch_comes_in_one_fetch(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="PULLS", subjects=["pulls.>"])
        for n in range(5):
            await js.publish("pulls.x", str(n).encode())
        sub = await js.pull_subscribe("pulls.>", durable="d", stream="PULLS")
        first = await fetch_ready(sub, 3, 5.0)
        rest = await fetch_ready(sub, 64, 5.0)
        assert [m.data for m in first] == [b"0", b"1", b"2"]
        assert [m.data for m in rest] == [b"3", b"4"]
        for m in first + rest:
            await m.ack()
        assert await fetch_ready(sub, 64, 0.2) == []
        info = await js.consumer_info("PULLS", "d")
        assert info.num_waiting == 0  # the server ended the request: none left behind
    finally:
        await nc.close()
