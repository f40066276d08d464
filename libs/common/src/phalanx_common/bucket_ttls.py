"""Declared KV time to live, applied also to buckets that exist already (ADR-0185).

:meth:`Bus.key_value` creates a missing bucket with its declared TTL but binds an existing one
as it is, so a bucket created before its TTL was declared (``intents`` until ADR-0185) would keep
every key for ever. :func:`apply_bucket_ttls` brings each existing bucket's stream
(``KV_<name>``) to the declared TTL (its ``max_age``) and leaves the rest of its configuration
alone. The executor calls it at start-up, right after :meth:`Bus.ensure_topology`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from phalanx_common import subjects
from phalanx_common.bus import Bus

__all__ = ["apply_bucket_ttls"]

log = logging.getLogger(__name__)


def _with_ttl(config: StreamConfig, ttl_s: float) -> StreamConfig | None:
    """``config`` with ``ttl_s`` as its age limit; ``None`` when it has that already."""
    if abs(float(config.max_age or 0.0) - ttl_s) < 1e-3:
        return None
    window = config.duplicate_window
    if ttl_s and window and window > ttl_s:
        window = ttl_s  # JetStream refuses a duplicate window longer than the age limit
    return config.evolve(max_age=ttl_s, duplicate_window=window)


async def apply_bucket_ttls(
    bus: Bus, buckets: Iterable[subjects.Bucket] = subjects.ALL_BUCKETS, timeout_s: float = 120.0
) -> list[str]:
    """Give every existing bucket of ``buckets`` its declared TTL; the names of those changed.

    A bucket that does not exist yet is left to :meth:`Bus.key_value`, which creates it with
    its TTL. Requests JetStream does not answer in time are asked again (as
    :meth:`Bus.ensure_topology` does) until ``timeout_s``.

    Raises:
        DependencyUnavailable: if JetStream still does not answer after ``timeout_s``.
    """
    changed: list[str] = []
    for bucket in buckets:
        stream = bucket.stream
        try:
            info = await bus.answered(
                functools.partial(bus.js.stream_info, stream), stream, timeout_s
            )
        except NotFoundError:
            continue
        config = _with_ttl(info.config, bucket.ttl_s)
        if config is None:
            continue
        await bus.answered(functools.partial(bus.js.update_stream, config), stream, timeout_s)
        log.info(
            "bucket %s: time to live %.0fs (was %.0fs)",
            bucket.name,
            bucket.ttl_s,
            float(info.config.max_age or 0.0),
        )
        changed.append(bucket.name)
    return changed
