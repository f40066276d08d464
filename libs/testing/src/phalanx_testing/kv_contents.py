"""Every entry of a KV bucket, read without nats-py's ``keys()``.

``KeyValue.keys()`` watches the bucket with an ordered consumer and ends at the first "nothing
pending" marker; on a loaded machine that marker can come before the first entry, and the
bucket then reads as empty (``NoKeysError``). The keys here come from the stream's own count of
messages per subject (``STREAM.INFO`` with a subjects filter), so a bucket with entries never
reads empty; each key's latest value is then read; deleted or purged keys are left out.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

__all__ = ["bucket_entries"]


async def bucket_entries(nc: Client, bucket: str) -> dict[str, bytes]:
    """``{key: latest value}`` of every key of ``bucket`` that is not deleted."""
    js = nc.jetstream()
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=prefix + ">")
    kv = await js.key_value(bucket)
    found: dict[str, bytes] = {}
    for subject in sorted(info.state.subjects or {}):
        key = subject[len(prefix) :]
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # deleted or purged (KeyDeletedError is one)
            continue
        found[key] = entry.value or b""
    return found
