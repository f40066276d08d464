"""What the admin API and the page show of a login: never a token or a password."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from phalanx_auth.store import AuthStore
from phalanx_auth.tokens import expiry_ns
from phalanx_common.clock import Clock
from phalanx_common.records import AccountRecord, LoginRecord

__all__ = ["AccountOut", "LoginOut", "LoginViews", "account_out"]


class AccountOut(BaseModel):
    """One broker account as the admin API shows it."""

    account_id: int
    account_spec: str
    login_id: str
    user_id: int
    active: bool


class LoginOut(BaseModel):
    """One login as the admin API shows it (no token, no password)."""

    login_id: str
    username: str
    user_id: int
    status: str
    method: str = "api"
    reason: str = ""
    has_credentials: bool = False
    token_expiration_time: str | None = None
    token_expires_in_s: float | None = None
    accounts: list[AccountOut] = Field(default_factory=list)


def account_out(record: AccountRecord) -> AccountOut:
    return AccountOut(
        account_id=record.account_id,
        account_spec=record.account_spec,
        login_id=record.login_id,
        user_id=record.user_id,
        active=record.active,
    )


class LoginViews:
    """Logins as the admin API and the page show them.

    Args:
        store: where logins and token metadata are read (the token itself is never opened).
        clock: what the token's remaining time is measured against.
        accounts_of: a login's linked accounts.
    """

    def __init__(
        self,
        store: AuthStore,
        clock: Clock,
        accounts_of: Callable[[str], Awaitable[list[AccountRecord]]],
    ) -> None:
        self._store = store
        self._clock = clock
        self._accounts_of = accounts_of

    async def of(self, login: LoginRecord) -> LoginOut:
        """A login with its token expiry (read without opening the token) and accounts."""
        meta = await self._store.get_token_meta(login.login_id)
        expires_in: float | None = None
        if meta is not None:
            ns = expiry_ns(meta.expiration_time)
            if ns is not None:
                expires_in = round((ns - self._clock.time_ns()) / 1e9, 1)
        return LoginOut(
            login_id=login.login_id,
            username=login.username,
            user_id=login.user_id,
            status=str(login.status),
            method=login.method,
            reason=login.reason,
            has_credentials=login.has_credentials,
            token_expiration_time=meta.expiration_time if meta else None,
            token_expires_in_s=expires_in,
            accounts=[account_out(a) for a in await self._accounts_of(login.login_id)],
        )

    async def all(self) -> list[LoginOut]:
        """Every login, in the store's order."""
        return [await self.of(login) for login in await self._store.list_logins()]
