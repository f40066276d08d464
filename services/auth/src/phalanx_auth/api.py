"""The auth admin API (bearer ``PHALANX_ADMIN_TOKEN``): register logins, list logins and accounts.

- ``POST /admin/logins`` ``{"username","password", "app_id"?, "cid"?, "sec"?, "device_id"?}``
  → 201 ``LoginOut`` (never the token or password); 400 wrong credentials; 409 the login id
  belongs to another username; 429 the venue throttles logins; 502 venue unreachable.
- ``GET /admin/logins`` → ``[LoginOut]``; ``GET /admin/accounts`` → ``[AccountOut]``.
- ``GET /healthz`` → ``{"status": "ok"}`` (no auth).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, Field

from phalanx_auth.logins import (
    InvalidCredentials,
    LoginConflict,
    LoginManager,
    LoginRequest,
    VenueRefused,
    VenueUnavailable,
)
from phalanx_auth.settings import AuthSettings
from phalanx_common.http import admin_guard
from phalanx_common.records import AccountRecord, LoginRecord

__all__ = ["AccountOut", "LoginIn", "LoginOut", "create_app"]


class LoginIn(BaseModel):
    """Body of ``POST /admin/logins``."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    app_id: str | None = None
    cid: str | None = None
    sec: str | None = None
    device_id: str | None = None


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
    token_expiration_time: str | None = None
    accounts: list[AccountOut] = Field(default_factory=list)


def _account_out(record: AccountRecord) -> AccountOut:
    return AccountOut(
        account_id=record.account_id,
        account_spec=record.account_spec,
        login_id=record.login_id,
        user_id=record.user_id,
        active=record.active,
    )


def create_app(settings: AuthSettings, manager: LoginManager) -> FastAPI:
    """Build the FastAPI app of the auth service.

    Args:
        settings: auth settings (``admin_token`` guards ``/admin``).
        manager: registers logins and reads the store.
    """
    app = FastAPI(title="Phalanx auth", version="0.1.0")
    admin = APIRouter(prefix="/admin", dependencies=[Depends(admin_guard(settings.admin_token))])
    store = manager.store

    async def login_out(login: LoginRecord, accounts: list[AccountRecord]) -> LoginOut:
        token = await store.get_token(login.login_id)
        return LoginOut(
            login_id=login.login_id,
            username=login.username,
            user_id=login.user_id,
            status=login.status,
            token_expiration_time=token[0].expiration_time if token else None,
            accounts=[_account_out(a) for a in accounts if a.login_id == login.login_id],
        )

    @admin.post("/logins", status_code=status.HTTP_201_CREATED)
    async def register_login(body: LoginIn) -> LoginOut:
        try:
            login, accounts = await manager.register(
                LoginRequest(
                    username=body.username,
                    password=body.password,
                    app_id=body.app_id,
                    cid=body.cid,
                    sec=body.sec,
                    device_id=body.device_id,
                )
            )
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        except InvalidCredentials as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        except LoginConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        except VenueRefused as exc:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                str(exc),
                headers={"Retry-After": str(max(1, int(exc.retry_after_s)))},
            ) from exc
        except VenueUnavailable as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from exc
        return await login_out(login, accounts)

    @admin.get("/logins")
    async def list_logins() -> list[LoginOut]:
        accounts = await store.list_accounts()
        return [await login_out(login, accounts) for login in await store.list_logins()]

    @admin.get("/accounts")
    async def list_accounts() -> list[AccountOut]:
        return [_account_out(a) for a in await store.list_accounts()]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(admin)
    return app
