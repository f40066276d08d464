"""Resends versus repeats of a webhook body that carries no id (ADR-0045).

TradingView users often send the same static message for every alert (``{"ticker": "MNQ1!",
"action": "exit"}``), and TradersPost trades each one. A body without an id is therefore a
*duplicate* only inside its strategy's short repeat window (a resend, a double click); after it,
the same body is a new signal with a new id and trades.

The first receipt of a body picks the signal id ``hash(strategy, body, received_ns)`` and records
``digest(strategy, body) -> (signal id, first seen)`` in the ``signal-repeats`` KV bucket with a
compare-and-set, so every ingest replica agrees: inside the window each receives the same id (and
JetStream's duplicate window turns the publish into ``duplicate``); after it, the first replica to
replace the record wins and the others read its id. When KV cannot answer (NATS is down and the
signal goes to the outbox), a per-process memory of recent bodies answers instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from phalanx_common.codec import decode, encode

__all__ = ["RepeatGuard", "repeat_signal_id"]

log = logging.getLogger(__name__)

MAX_WINDOW_S = 3600.0  # the bucket's TTL: records older than this are gone


class _Seen(msgspec.Struct, frozen=True):
    signal_id: str
    first_ns: int


def _digest(strategy_id: str, body: bytes) -> str:
    return hashlib.sha256(b"body\x00" + strategy_id.encode() + b"\x00" + body).hexdigest()


def repeat_signal_id(strategy_id: str, body: bytes, received_ns: int) -> str:
    """The id of an id-less signal first received at ``received_ns``."""
    digest = hashlib.sha256(
        strategy_id.encode() + b"\x00" + body + b"\x00" + str(received_ns).encode()
    ).hexdigest()
    return f"s{digest[:31]}"


class RepeatGuard:
    """Gives an id-less body its signal id: the earlier one inside the window, else a new one.

    Args:
        kv: The ``signal-repeats`` bucket (``None``: memory only, e.g. in unit tests).
        connected: Whether NATS is connected now (KV is not tried when it is not).
        memory_size: Bodies remembered in this process for when KV cannot answer.
        timeout_s: Bound on the KV calls of one webhook.
    """

    def __init__(
        self,
        kv: KeyValue | None,
        connected: Callable[[], bool] = lambda: True,
        memory_size: int = 10_000,
        timeout_s: float = 0.5,
    ) -> None:
        self._kv = kv
        self._connected = connected
        self._memory: OrderedDict[str, _Seen] = OrderedDict()
        self._memory_size = memory_size
        self._timeout_s = timeout_s

    async def signal_id(
        self, strategy_id: str, body: bytes, received_ns: int, window_s: float
    ) -> str:
        """The signal id for this receipt of ``body``.

        Inside ``window_s`` of the body's first receipt this is that receipt's id (a duplicate);
        otherwise a new id, recorded as the body's new first receipt.
        """
        window_ns = int(min(max(window_s, 0.0), MAX_WINDOW_S) * 1e9)
        key = _digest(strategy_id, body)
        fresh = _Seen(repeat_signal_id(strategy_id, body, received_ns), received_ns)
        if self._kv is not None and self._connected():
            try:
                async with asyncio.timeout(self._timeout_s):
                    seen = await self._claim(key, fresh, received_ns, window_ns)
            except (NatsError, TimeoutError, OSError) as exc:
                log.warning("signal-repeats unavailable (%r); deciding from memory", exc)
            else:
                self._remember(key, seen)
                return seen.signal_id
        earlier = self._memory.get(key)
        if earlier is not None and received_ns - earlier.first_ns < window_ns:
            return earlier.signal_id
        self._remember(key, fresh)
        return fresh.signal_id

    async def _claim(self, key: str, fresh: _Seen, now_ns: int, window_ns: int) -> _Seen:
        assert self._kv is not None
        for _ in range(5):
            try:
                await self._kv.create(key, encode(fresh))
                return fresh
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                continue  # deleted or expired between the two calls: create again
            earlier = decode(entry.value or b"", _Seen)
            if now_ns - earlier.first_ns < window_ns:
                return earlier
            try:
                await self._kv.update(key, encode(fresh), last=entry.revision)
                return fresh
            except KeyWrongLastSequenceError:
                continue  # another replica renewed it first: read its id
        raise TimeoutError("signal-repeats: too many concurrent changes of one key")

    def _remember(self, key: str, seen: _Seen) -> None:
        self._memory[key] = seen
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)
