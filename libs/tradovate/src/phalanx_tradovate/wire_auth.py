# ruff: noqa: N815
"""Tradovate's wire types of authentication: access-token requests, OAuth tokens, ``auth/me``."""

from __future__ import annotations

from phalanx_tradovate.wire_base import WireStruct

__all__ = [
    "AccessTokenRequest",
    "AccessTokenResponse",
    "MeResponse",
    "OAuthTokenRequest",
    "OAuthTokenResponse",
]


class AccessTokenRequest(WireStruct, frozen=True, kw_only=True):
    """Body of ``POST /auth/accesstokenrequest`` (username/password API access)."""

    name: str
    password: str
    appId: str | None = None
    appVersion: str | None = None
    deviceId: str | None = None
    cid: int | str | None = None
    sec: str | None = None

    def __repr__(self) -> str:
        return f"AccessTokenRequest(name={self.name!r}, appId={self.appId!r})"


class AccessTokenResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of ``accesstokenrequest`` and ``renewaccesstoken``.

    ``errorText`` is set (with HTTP 200) when the login failed; the REST client raises then.
    """

    accessToken: str | None = None
    mdAccessToken: str | None = None
    expirationTime: str | None = None
    userId: int | None = None
    name: str | None = None
    userStatus: str | None = None
    errorText: str | None = None
    hasLive: bool | None = None
    passwordExpirationTime: str | None = None

    def __repr__(self) -> str:
        return (
            f"AccessTokenResponse(userId={self.userId!r}, name={self.name!r}, "
            f"expirationTime={self.expirationTime!r}, errorText={self.errorText!r})"
        )


class OAuthTokenRequest(WireStruct, frozen=True, kw_only=True):
    """Body of the OAuth code exchange (``/auth/oauthtoken``), snake_case as Tradovate names it."""

    grant_type: str = "authorization_code"
    code: str
    redirect_uri: str
    client_id: str
    client_secret: str
    code_verifier: str | None = None


class OAuthTokenResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of the OAuth code exchange: a token, or ``error``/``error_description``."""

    access_token: str | None = None
    token_type: str | None = None
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None
    error: str | None = None
    error_description: str | None = None


class MeResponse(WireStruct, frozen=True, kw_only=True):
    """Answer of ``GET /auth/me``."""

    userId: int | None = None
    name: str | None = None
    fullName: str | None = None
    email: str | None = None
    emailVerified: bool | None = None
    isTrial: bool | None = None
    errorText: str | None = None
