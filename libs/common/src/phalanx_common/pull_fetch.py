"""Pull a JetStream consumer's messages with requests the server ends, never the client (ADR-0182).

nats-py's ``fetch(n, timeout)`` asks for ``n`` messages "as soon as any are there, for at most
``timeout``", but gives up on the request by its own clock at ``timeout`` while the server's copy
of the request lives on for a moment. A message published in that moment goes to the abandoned
request; the next ``fetch`` reads it as its first message and then waits for the rest of *its*
request until its own timeout, because the server has nothing more to say about that one. The
message waited up to a whole fetch timeout: seen as 0.4-0.9 s outliers in every window of the
benchmark's soak, and staged in ``libs/common/tests/test_pull_fetch.py``.

:func:`fetch_ready` sends the same request (``no_wait`` with ``expires``: wait for the first
message, then take what is available) but listens longer than the request lives, so every
request is ended by the server — by its last message, a 404 "no messages" or a 408 "request
timeout" — and no abandoned request is left to swallow the next message.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

__all__ = ["fetch_ready"]

# How much longer the client listens than the request lives: the server's last word on a
# request (a 404/408) must arrive before the client stops listening.
_LISTEN_MARGIN_S = 1.0
_ENDS_REQUEST = frozenset({"404", "408", "409"})  # no messages, request timeout, conflict
_HEARTBEAT = "100"


async def fetch_ready(
    sub: JetStreamContext.PullSubscription, batch: int, wait_s: float
) -> list[Msg]:
    """Up to ``batch`` messages: those already delivered to ``sub``, else the first to arrive
    within ``wait_s`` together with whatever is available with it; ``[]`` when none came.

    Raises:
        nats.js.errors.APIError: the server answered the request with another error status.
    """
    msgs = _already_delivered(sub, batch)
    if msgs:
        return msgs
    request = {"batch": batch, "expires": int(wait_s * 1e9), "no_wait": True}
    await sub._nc.publish(sub._nms, json.dumps(request).encode(), sub._deliver)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s + _LISTEN_MARGIN_S
    while len(msgs) < batch:
        try:
            msg = await sub._sub.next_msg(timeout=max(0.001, deadline - loop.time()))
        except (TimeoutError, NatsTimeoutError):
            break  # the server's last word was lost (a reconnect): the request died with it
        status = JetStreamContext.is_status_msg(msg)
        if status is None:
            msgs.append(msg)
        elif status in _ENDS_REQUEST:
            break
        elif status != _HEARTBEAT:
            raise APIError.from_msg(msg)
    return msgs


def _already_delivered(sub: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
    """Messages in ``sub``'s queue (answers to an earlier request); statuses are dropped."""
    inner = sub._sub
    queue = inner._pending_queue
    msgs: list[Msg] = []
    while len(msgs) < batch and not queue.empty():
        msg = queue.get_nowait()
        inner._pending_size -= len(msg.data)
        if JetStreamContext.is_status_msg(msg) is None:
            msgs.append(msg)
    return msgs
