"""Settings of the auth service (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings

__all__ = ["AuthSettings"]


class AuthSettings(CommonSettings, frozen=True, kw_only=True):
    """Settings of the auth service.

    Attributes:
        tradovate_rest_url: venue REST base (``PHALANX_TRADOVATE_REST_URL``), e.g. the simulator,
            ``https://demo.tradovateapi.com/v1`` or ``https://live.tradovateapi.com/v1``.
        auth_port: admin API port (0 picks a free one).
        app_id: ``appId`` sent with ``accesstokenrequest`` (a login may override it).
        app_version: ``appVersion`` sent with ``accesstokenrequest``.
        cid: API key client id (``cid``); empty means not sent.
        sec: API key secret (``sec``); empty means not sent.
        device_id: stable ``deviceId``; empty derives one per username (sha256, stable).
        renew_before_s: renew a token when it has less than this left (Tradovate: ~15 min).
        renew_check_s: how often the renewal loop looks at the tokens.
        venue_timeout_s: timeout of each venue call.
    """

    service_name: str = "auth"
    tradovate_rest_url: str = "http://127.0.0.1:8900/v1"
    auth_port: int = 8100
    app_id: str = "phalanx"
    app_version: str = "0.1.0"
    cid: str = ""
    sec: str = ""
    device_id: str = ""
    renew_before_s: float = 1800.0
    renew_check_s: float = 300.0
    venue_timeout_s: float = 10.0

    def __repr__(self) -> str:
        return (
            f"AuthSettings(tradovate_rest_url={self.tradovate_rest_url!r}, "
            f"auth_port={self.auth_port!r}, app_id={self.app_id!r}, nats_url={self.nats_url!r})"
        )
