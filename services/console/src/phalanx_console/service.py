"""The console service: an HTTP server over the other services' admin APIs (no NATS, no
state of its own but sessions; ADR-0130)."""

from __future__ import annotations

import asyncio
import logging

from phalanx_common.clock import Clock, LiveClock
from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits
from phalanx_console.app import create_app
from phalanx_console.backends import AdminApis
from phalanx_console.metrics import ConsoleMetrics
from phalanx_console.sessions import SessionStore
from phalanx_console.settings import ConsoleSettings
from phalanx_console.users import Users

__all__ = ["ConsoleService", "build_console"]

log = logging.getLogger(__name__)


class ConsoleService:
    """A built console; :meth:`start` serves, :meth:`stop` ends streams and closes clients."""

    def __init__(
        self,
        settings: ConsoleSettings,
        apis: AdminApis,
        users: Users,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.apis = apis
        self.closing = asyncio.Event()
        clock = clock or LiveClock()
        self.sessions = SessionStore(clock, settings.session_ttl_s)
        self.metrics = ConsoleMetrics(self.sessions)
        self.app = create_app(
            settings, apis, users, self.sessions, self.closing, self.metrics, clock
        )
        self._http = HttpServer(
            self.app,
            settings.http_host,
            settings.console_port,
            name="console",
            limits=HttpLimits.from_settings(settings, admin=False),
        )

    @property
    def url(self) -> str:
        """Base URL of the running console (its real port once started)."""
        return self._http.url

    async def start(self) -> None:
        """Serve HTTP."""
        await self._http.start()
        log.info("console at %s/", self.url)

    async def stop(self) -> None:
        """End the live streams, stop serving, close the API clients (idempotent)."""
        self.closing.set()
        await self._http.stop()
        await self.apis.close()


async def build_console(settings: ConsoleSettings, clock: Clock | None = None) -> ConsoleService:
    """Assemble the console (not yet started).

    Raises:
        ValueError: ``PHALANX_CONSOLE_USERS`` is malformed.
    """
    users = Users.parse(settings.console_users)
    if not len(users):
        log.warning("PHALANX_CONSOLE_USERS is empty: nobody can sign in to the console")
    apis = AdminApis(
        {
            "ingest": settings.ingest_url,
            "auth": settings.auth_url,
            "executor": settings.executor_url,
            "ledger": settings.ledger_url,
        },
        settings.admin_token,
    )
    return ConsoleService(settings, apis, users, clock)
