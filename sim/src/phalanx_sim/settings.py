"""Simulator settings: one frozen struct read from ``PHALANX_SIM_*`` environment variables.

Every field ``sim_x`` is read from ``PHALANX_SIM_X`` by
:func:`phalanx_common.settings.load_settings`. Where the Tradovate reference leaves a behaviour
uncertain, the behaviour is a setting here whose default is the documented one.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from phalanx_common.settings import load_settings

__all__ = ["SimSettings", "load_sim_settings"]


class SimSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings of the Tradovate simulator.

    Attributes:
        sim_host: Interface to bind (loopback by default; the admin API has no auth).
        sim_port: TCP port (0 picks a free one).
        sim_token_lifetime_s: Access-token lifetime; Tradovate's current docs say 80 minutes.
        sim_price_walk: Move prices randomly (for ``make run``); off so tests are deterministic.
        sim_price_walk_interval_s: Seconds between random-walk steps.
        sim_price_walk_max_ticks: Largest step of the random walk, in ticks.
        sim_seed: Path of a JSON seed file (users, accounts, prices) applied at start and reset.
        sim_ws_heartbeat_s: Server ``h`` heartbeat interval (sent only while otherwise silent).
        sim_ws_idle_timeout_s: Close a socket after this long without any client frame (0: never).
        sim_ws_authorize_timeout_s: Close a socket not authorized within this time (0: never).
        sim_ws_coalesce: Pack all messages queued for a socket into one ``a[...]`` frame.
        sim_foreign_account_mode: ``"failure"`` answers an order on an account the user does not
            own with HTTP 200 ``{failureReason: "Unauthorized", failureText: "Access is denied"}``;
            ``"denied"`` answers with status 401 ``"Access is denied"``.
        sim_sync_require_entity_types: If true, a ``user/syncrequest`` without ``entityTypes``
            gets nothing (the newer partner-docs behaviour); if false it gets every type.
        sim_starting_balance: Cash balance of a new account (USD).
        sim_request_log_max: Most recent requests kept for ``/admin/requests``.
        sim_admin_loopback_only: Refuse ``/admin`` requests that do not come from loopback.
        sim_account_prefix: Prefix of generated account names (``DEMO1234567``).
        sim_log_level: Log level of the simulator process.
        sim_gc_threshold: Generation-0 threshold of the garbage collector set by
            ``python -m phalanx_sim`` (the venue allocates many long-lived entities; a larger
            threshold roughly halves the cost of an order). 0 keeps Python's default.
        sim_max_sessions_per_user: Concurrent server sessions per login (Tradovate: 2); a new
            login or OAuth token beyond it closes the oldest session, its tokens and sockets.
            0 = unlimited.
        sim_oauth_code_ttl_s: Lifetime of an OAuth authorization code (single-use).
        sim_oauth_error_status: HTTP status of a failed ``/auth/oauthtoken`` exchange (the
            swagger puts ``error``/``error_description`` in the 200 response; 400 is RFC 6749).
        sim_rate_limits: Enforce the per-login and per-endpoint limits below.
        sim_limit_per_minute: Requests per login in any rolling ``sim_limit_minute_s`` window.
        sim_limit_per_hour: Requests per login in any rolling ``sim_limit_hour_s`` window.
        sim_limit_minute_s: Length of the "minute" window (shorten it in tests).
        sim_limit_hour_s: Length of the "hour" windows (per-login and per-endpoint).
        sim_limit_count_authorize: Count the socket ``authorize`` frame toward the login budget.
        sim_penalty_strikes: Requests that ignore a running penalty and get another p-ticket;
            the next one gets HTTP 423 (about to be locked out), the one after that a 429 lockout.
        sim_lockout_s: Length of a 429 lockout; every request during it restarts it.
        sim_limit_renew_per_hour: ``auth/renewaccesstoken`` per hour (successes count).
        sim_limit_sync_per_hour: ``user/syncrequest`` per hour (successes count).
        sim_limit_me_failures_per_hour: failed ``auth/me`` per hour.
        sim_limit_login_failures_per_hour: failed ``auth/accesstokenrequest`` per hour; beyond it
            the answer is a p-ticket with ``p-captcha: true``.
        sim_endpoint_limit_scope: ``"login"`` keys endpoint limits by login (user id or name);
            ``"ip"`` by client address, as Tradovate documents (everything on one machine then
            shares one budget).
        sim_max_sockets_per_user: Sockets per login; the oldest is told ``shutdown``
            ``ConnectionQuotaReached``, closed, and its token revoked. 0 = unlimited.
        sim_violation_log_max: Most recent violations kept for ``/admin/violations``.
        sim_session_closed: Start with the market closed (orders fail with ``SessionClosed``).
        sim_max_position: Default max absolute position per account and contract (0 = none);
            beyond it orders fail with ``MaxPosLimitReached``.
        sim_fault_drop_hang_s: How long a REST request whose response is dropped hangs before
            the simulator answers 504 (a socket response is simply never sent).
        sim_finished_order_retention_s: A finished order (Filled, Canceled) with its brackets
            and everything that hangs off them (versions, commands, reports, fills, fillFees)
            is forgotten this long after the last of them finished (0: no age limit; ADR-0187).
        sim_finished_orders_max: At most this many finished orders are kept; beyond it the
            oldest finished are forgotten first (0: no count limit; ADR-0187).
        sim_finished_order_min_retention_s: The count limit never forgets an order finished
            less than this long ago (an order the executor may still look up by ``clOrdId``).
    """

    sim_host: str = "127.0.0.1"
    sim_port: int = 8900
    sim_token_lifetime_s: float = 80 * 60.0
    sim_price_walk: bool = False
    sim_price_walk_interval_s: float = 0.5
    sim_price_walk_max_ticks: int = 2
    sim_seed: str = ""
    sim_ws_heartbeat_s: float = 2.5
    sim_ws_idle_timeout_s: float = 10.0
    sim_ws_authorize_timeout_s: float = 30.0
    sim_ws_coalesce: bool = True
    sim_foreign_account_mode: str = "failure"
    sim_sync_require_entity_types: bool = False
    sim_starting_balance: float = 50_000.0
    sim_request_log_max: int = 200_000
    sim_admin_loopback_only: bool = True
    sim_account_prefix: str = "DEMO"
    sim_log_level: str = "WARNING"
    sim_gc_threshold: int = 50_000
    sim_max_sessions_per_user: int = 2
    sim_oauth_code_ttl_s: float = 60.0
    sim_oauth_error_status: int = 200
    sim_rate_limits: bool = True
    sim_limit_per_minute: int = 80
    sim_limit_per_hour: int = 5_000
    sim_limit_minute_s: float = 60.0
    sim_limit_hour_s: float = 3_600.0
    sim_limit_count_authorize: bool = False
    sim_penalty_strikes: int = 3
    sim_lockout_s: float = 3_600.0
    sim_limit_renew_per_hour: int = 15
    sim_limit_sync_per_hour: int = 300
    sim_limit_me_failures_per_hour: int = 10
    sim_limit_login_failures_per_hour: int = 5
    sim_endpoint_limit_scope: str = "login"
    sim_max_sockets_per_user: int = 50
    sim_violation_log_max: int = 100_000
    sim_session_closed: bool = False
    sim_max_position: int = 0
    sim_fault_drop_hang_s: float = 30.0
    sim_finished_order_retention_s: float = 86_400.0
    sim_finished_orders_max: int = 100_000
    sim_finished_order_min_retention_s: float = 600.0

    def __post_init__(self) -> None:
        if self.sim_foreign_account_mode not in ("failure", "denied"):
            raise ValueError("sim_foreign_account_mode must be 'failure' or 'denied'")
        if self.sim_endpoint_limit_scope not in ("login", "ip"):
            raise ValueError("sim_endpoint_limit_scope must be 'login' or 'ip'")
        retention = (
            self.sim_finished_order_retention_s,
            self.sim_finished_orders_max,
            self.sim_finished_order_min_retention_s,
        )
        if min(retention) < 0:
            raise ValueError("the finished-order retention settings are 0 or positive")


def load_sim_settings(environ: Mapping[str, str] | None = None) -> SimSettings:
    """Read :class:`SimSettings` from ``PHALANX_SIM_*`` variables (``environ`` or the process)."""
    return load_settings(SimSettings, environ)
