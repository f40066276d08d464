"""Settings of the console (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings

__all__ = ["ConsoleSettings"]


class ConsoleSettings(CommonSettings, frozen=True, kw_only=True):
    """Console settings on top of :class:`~phalanx_common.settings.CommonSettings`.

    The console holds no state of its own: it calls the admin APIs of the other services with
    ``PHALANX_ADMIN_TOKEN`` (ADR-0130).

    Attributes:
        console_port: TCP port of the console (``PHALANX_CONSOLE_PORT``; 0 picks a free one).
        console_users: Who may sign in: ``name:role:hash`` entries separated by commas, role
            ``admin`` or ``viewer``, hash from ``phalanx-console-hash`` (scrypt).
        ingest_url: Base URL of ingest's admin API (``PHALANX_INGEST_URL``).
        auth_url: Base URL of auth's admin API; also where the account page is linked.
        executor_url: Base URL of an executor replica's admin API.
        ledger_url: Base URL of the ledger's API.
        trace_url: Link of a trace, ``{trace_id}`` replaced (e.g. Grafana's explore URL for
            Tempo); empty: the trace id is shown without a link.
        cookie_secure: Mark the session cookie ``Secure`` (browsers still keep it on
            ``http://127.0.0.1`` and ``localhost``).
        session_ttl_s: How long a session lives after sign-in.
        live_poll_s: How often the live signal log asks ingest for changes.
        console_reconcile_timeout_s: How long "reconcile now" waits for the ledger's check of
            every account (``PHALANX_CONSOLE_RECONCILE_TIMEOUT_S``; the ledger asks the broker
            about each).
        console_public_url: The console's address as operators' browsers reach it (e.g.
            behind a proxy), where auth's OAuth callback sends them back; empty: the address
            of the request that pressed "Connect Tradovate" (ADR-0135).
    """

    service_name: str = "console"
    console_port: int = 8400
    console_users: str = ""
    ingest_url: str = "http://127.0.0.1:8000"
    auth_url: str = "http://127.0.0.1:8100"
    executor_url: str = "http://127.0.0.1:8300"
    ledger_url: str = "http://127.0.0.1:8200"
    trace_url: str = ""
    cookie_secure: bool = True
    session_ttl_s: float = 12 * 3600.0
    live_poll_s: float = 0.5
    console_reconcile_timeout_s: float = 120.0
    console_public_url: str = ""
