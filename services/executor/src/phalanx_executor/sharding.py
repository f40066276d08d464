"""Shards: logins map to shards, shards map to replicas (ADR-0003)."""

from __future__ import annotations

__all__ = ["owned_shards", "shard_of"]

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


def owned_shards(ordinal: int, replicas: int, shards: int) -> list[int]:
    """The shards replica ``ordinal`` of ``replicas`` owns (round-robin, stable)."""
    if not 0 <= ordinal < replicas:
        raise ValueError(f"replica ordinal {ordinal} outside 0..{replicas - 1}")
    return [s for s in range(shards) if s % replicas == ordinal]
