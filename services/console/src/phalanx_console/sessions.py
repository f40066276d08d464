"""Signed-in sessions: a random id in an ``HttpOnly`` cookie, kept in this process (ADR-0131).

Each session has its own CSRF token (random, compared in constant time) that every form and
every htmx request sends back. Signing out or the end of ``ttl_s`` ends a session; a restart of
the console ends all of them (sign in again).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from phalanx_common.clock import Clock
from phalanx_console.users import Role

__all__ = ["Session", "SessionStore"]

_MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    """One signed-in browser."""

    session_id: str
    user: str
    role: Role
    csrf: str
    signed_in_ns: int
    expires_ns: int

    @property
    def is_admin(self) -> bool:
        """Whether this session may change things."""
        return self.role == "admin"

    def csrf_matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is this session's CSRF token."""
        return bool(presented) and hmac.compare_digest(
            self.csrf.encode(), (presented or "").encode()
        )


class SessionStore:
    """Sessions by id.

    Args:
        clock: Source of time.
        ttl_s: Lifetime of a session from sign-in.
    """

    def __init__(self, clock: Clock, ttl_s: float) -> None:
        self._clock = clock
        self._ttl_ns = int(ttl_s * 1e9)
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        self._drop_expired(self._clock.time_ns())
        return len(self._sessions)

    def open(self, user: str, role: Role) -> Session:
        """A new session for ``user``."""
        now = self._clock.time_ns()
        self._drop_expired(now)
        if len(self._sessions) >= _MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.signed_in_ns)
            del self._sessions[oldest.session_id]
        session = Session(
            session_id=secrets.token_urlsafe(32),
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            signed_in_ns=now,
            expires_ns=now + self._ttl_ns,
        )
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, if any."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_ns <= self._clock.time_ns():
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str | None) -> None:
        """End a session (unknown ids are ignored)."""
        if session_id:
            self._sessions.pop(session_id, None)

    def _drop_expired(self, now: int) -> None:
        for sid in [s for s, v in self._sessions.items() if v.expires_ns <= now]:
            del self._sessions[sid]
