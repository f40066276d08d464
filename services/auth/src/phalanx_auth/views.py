"""What the admin API and the page show of a login: never a token or a password."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phalanx_auth.logins import LoginManager, expiry_ns
from phalanx_common.records import AccountRecord, LoginRecord

__all__ = ["AccountOut", "LoginOut", "account_out", "login_view"]


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


async def login_view(manager: LoginManager, login: LoginRecord) -> LoginOut:
    """A login with its token expiry (read without opening the token) and accounts."""
    meta = await manager.store.get_token_meta(login.login_id)
    expires_in: float | None = None
    if meta is not None:
        ns = expiry_ns(meta.expiration_time)
        if ns is not None:
            expires_in = round((ns - manager.clock.time_ns()) / 1e9, 1)
    return LoginOut(
        login_id=login.login_id,
        username=login.username,
        user_id=login.user_id,
        status=login.status,
        method=login.method,
        reason=login.reason,
        has_credentials=login.has_credentials,
        token_expiration_time=meta.expiration_time if meta else None,
        token_expires_in_s=expires_in,
        accounts=[account_out(a) for a in await manager.accounts_of(login.login_id)],
    )
