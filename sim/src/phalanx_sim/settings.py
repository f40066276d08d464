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

    def __post_init__(self) -> None:
        if self.sim_foreign_account_mode not in ("failure", "denied"):
            raise ValueError("sim_foreign_account_mode must be 'failure' or 'denied'")


def load_sim_settings(environ: Mapping[str, str] | None = None) -> SimSettings:
    """Read :class:`SimSettings` from ``PHALANX_SIM_*`` variables (``environ`` or the process)."""
    return load_settings(SimSettings, environ)
