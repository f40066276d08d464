"""A login's status and the only moves it may make (like the executor's intent table).

| from            | to                                         |
|-----------------|--------------------------------------------|
| (none)          | active (connected)                         |
| active          | active (reconnected), reauth_required, disconnected |
| reauth_required | active (reconnected), reauth_required (a newer reason), disconnected |
| disconnected    | active (reconnected), disconnected         |

A disconnected login never becomes ``reauth_required``: an operator took it away, so a renewal
that lost the race with the disconnect has nothing left to ask a person for.
"""

from __future__ import annotations

import msgspec

from phalanx_common.records import LoginRecord, LoginStatus

__all__ = ["TRANSITIONS", "InvalidLoginTransition", "LoginStatus", "can_move", "moved"]

TRANSITIONS: dict[LoginStatus | None, frozenset[LoginStatus]] = {
    None: frozenset({LoginStatus.ACTIVE}),
    LoginStatus.ACTIVE: frozenset(
        {LoginStatus.ACTIVE, LoginStatus.REAUTH_REQUIRED, LoginStatus.DISCONNECTED}
    ),
    LoginStatus.REAUTH_REQUIRED: frozenset(
        {LoginStatus.ACTIVE, LoginStatus.REAUTH_REQUIRED, LoginStatus.DISCONNECTED}
    ),
    LoginStatus.DISCONNECTED: frozenset({LoginStatus.ACTIVE, LoginStatus.DISCONNECTED}),
}


class InvalidLoginTransition(Exception):
    """A move outside :data:`TRANSITIONS` was attempted."""


def can_move(current: LoginStatus | None, to: LoginStatus) -> bool:
    """Whether a login in ``current`` (``None``: no record yet) may move to ``to``."""
    return to in TRANSITIONS[current]


def moved(login: LoginRecord, to: LoginStatus, *, reason: str, **changes: object) -> LoginRecord:
    """``login`` in status ``to`` with ``reason`` and ``changes`` applied.

    Raises:
        InvalidLoginTransition: the table does not allow the move.
    """
    if not can_move(login.status, to):
        raise InvalidLoginTransition(f"login {login.login_id!r}: {login.status} -> {to}")
    return msgspec.structs.replace(login, status=to, reason=reason, **changes)
