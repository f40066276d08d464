"""Shards: logins map to shards (ADR-0003); membership.py deals shards to live replicas."""

from __future__ import annotations

__all__ = ["shard_of"]

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def shard_of(login_id: str, shards: int) -> int:
    """The shard of a login: FNV-1a 32-bit of its id, modulo the shard count.

    All accounts of one login land on one shard, so one replica holds that login's socket
    and spends its budget.
    """
    h = _FNV_OFFSET
    for byte in login_id.encode():
        h ^= byte
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
    return h % shards
