"""One asyncio lock per login: connect, renewal, rotation and discovery of a login never overlap."""

from __future__ import annotations

import asyncio

__all__ = ["LoginLocks"]


class LoginLocks:
    """Hands out the lock of a login (made on first use, kept for the process's life)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, login_id: str) -> asyncio.Lock:
        lock = self._locks.get(login_id)
        if lock is None:
            lock = self._locks[login_id] = asyncio.Lock()
        return lock
