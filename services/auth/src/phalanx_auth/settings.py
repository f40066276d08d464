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
        renew_max_per_hour: renewals this service sends per login in any rolling hour (the
            venue allows 15 ``renewaccesstoken`` per hour, successes counted).
        renew_concurrency: renewals in flight at once across logins.
        login_failures_per_hour: failed ``accesstokenrequest`` per login in a rolling hour
            before auth stops trying (Tradovate's SDK refuses the 4th: 1-hour lock).
        store_credentials: allow a login registered with ``remember_credentials`` to keep its
            username/password sealed in KV, for the renewal fallback (ADR-0021). Off: never.
        discover_every_s: how often accounts are re-discovered per login (0 = only on connect).
        tradovate_oauth_url: the venue's consent page (``https://trader.tradovate.com/oauth``;
            the simulator: ``http://127.0.0.1:8900/oauth``). Empty: OAuth is not configured.
        oauth_token_url: the code exchange endpoint; empty derives ``<rest base without
            /v1>/auth/oauthtoken``.
        oauth_client_id: the OAuth application's client id.
        oauth_client_secret: the OAuth application's secret.
        oauth_redirect_uri: this service's public callback (``https://.../oauth/callback``);
            empty derives it from the address the service listens on.
        oauth_pkce: send an S256 PKCE challenge (and the verifier on exchange).
        oauth_state_ttl_s: how long a started consent may take.
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
    renew_max_per_hour: int = 12
    renew_concurrency: int = 16
    login_failures_per_hour: int = 3
    store_credentials: bool = True
    discover_every_s: float = 3600.0
    tradovate_oauth_url: str = ""
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_redirect_uri: str = ""
    oauth_pkce: bool = True
    oauth_state_ttl_s: float = 600.0

    def __repr__(self) -> str:
        return (
            f"AuthSettings(tradovate_rest_url={self.tradovate_rest_url!r}, "
            f"auth_port={self.auth_port!r}, app_id={self.app_id!r}, nats_url={self.nats_url!r})"
        )
