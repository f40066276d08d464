"""Run the simulator in-process: :class:`Simulator` (start/stop, URLs, direct state access)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from types import TracebackType

import msgspec

from phalanx_common.http import HttpServer
from phalanx_common.tasks import OwnedTasks
from phalanx_sim.app import build_app
from phalanx_sim.marketdata import MarketDataHub
from phalanx_sim.pricefeed import random_walk
from phalanx_sim.seed import Seed, apply_seed, load_seed
from phalanx_sim.settings import SimSettings
from phalanx_sim.state import OAuthClient, SimState
from phalanx_sim.times import VenueClock
from phalanx_sim.venue import CreatedUser, Venue
from phalanx_sim.ws import Hub

__all__ = ["Simulator", "running_simulator"]

log = logging.getLogger(__name__)

_PRUNE_INTERVAL_S = 1.0


class Simulator:
    """A protocol-faithful Tradovate venue served over HTTP and WebSocket.

    Example:
        ```python
        async with Simulator(port=0) as sim:
            user = sim.create_user("alice", "pw", accounts=2)
            # REST at sim.rest_url (http://127.0.0.1:PORT/v1), socket at sim.ws_url
        ```

    Args:
        settings: Simulator settings (default: :class:`SimSettings` defaults).
        host: Overrides ``settings.sim_host``.
        port: Overrides ``settings.sim_port`` (0 binds a free port; see :attr:`port`).
        seed: A seed to apply at start and on reset (overrides ``settings.sim_seed``).
        clock: The venue's clock (token expiry, limit windows, timestamps); a
            :class:`phalanx_sim.testing.ManualClock` makes time-dependent tests exact.
    """

    def __init__(
        self,
        settings: SimSettings | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        seed: Seed | None = None,
        clock: VenueClock | None = None,
    ) -> None:
        base = settings or SimSettings()
        self.settings = msgspec.structs.replace(
            base,
            sim_host=base.sim_host if host is None else host,
            sim_port=base.sim_port if port is None else port,
        )
        self._seed = seed
        self.venue = Venue(self.settings, clock)
        self.hub = Hub(self.venue)
        self.md_hub = MarketDataHub(self.venue)  # the market-data socket (ADR-0128)
        self.app = build_app(self)
        self._server = HttpServer(
            self.app, self.settings.sim_host, self.settings.sim_port, name="phalanx-sim"
        )
        self._tasks = OwnedTasks("simulator")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Apply the seed, start serving and the background tasks.

        Raises:
            RuntimeError: if the HTTP server cannot start.
        """
        self._apply_seed()
        await self._server.start()
        self._tasks.spawn(self.hub.run(), "sim-housekeeping")
        self._tasks.spawn(self.md_hub.run(), "sim-md-quotes")
        self._tasks.spawn(self._forget_finished_orders(), "sim-retention")
        if self.settings.sim_price_walk:
            walk = random_walk(
                self.venue,
                self.settings.sim_price_walk_interval_s,
                self.settings.sim_price_walk_max_ticks,
            )
            self._tasks.spawn(walk, "sim-price-walk")

    async def _forget_finished_orders(self) -> None:
        """Once a second, forget the finished orders past the retention (ADR-0187)."""
        while True:
            await asyncio.sleep(_PRUNE_INTERVAL_S)
            self.venue.engine.finished.prune()

    async def stop(self) -> None:
        """Close the sockets, stop the background tasks and the server (idempotent)."""
        self.hub.close_all("Server stopping")
        self.md_hub.close_all("Server stopping")
        self.venue.release_hung()
        await self._tasks.stop()
        await self._server.stop()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        return self._server.port

    @property
    def url(self) -> str:
        """HTTP base URL, e.g. ``http://127.0.0.1:8900``."""
        return self._server.url

    @property
    def rest_url(self) -> str:
        """REST base URL (``PHALANX_TRADOVATE_REST_URL``), e.g. ``http://127.0.0.1:8900/v1``."""
        return self.url + "/v1"

    @property
    def ws_url(self) -> str:
        """Trading WebSocket URL (``PHALANX_TRADOVATE_WS_URL``)."""
        return self.url.replace("http://", "ws://", 1) + "/v1/websocket"

    @property
    def md_url(self) -> str:
        """Market-data WebSocket URL (``PHALANX_TRADOVATE_MD_URL``)."""
        return self.url.replace("http://", "ws://", 1) + "/md/v1/websocket"

    # ------------------------------------------------------------------ direct access

    @property
    def state(self) -> SimState:
        """The venue's in-memory state, for assertions (replaced by :meth:`reset`)."""
        return self.venue.state

    def create_user(
        self, name: str, password: str, accounts: int | Iterable[str] = 1
    ) -> CreatedUser:
        """Create a login with accounts (same as ``POST /admin/users``).

        Raises:
            ValueError: if the user or an account name exists.
        """
        return self.venue.create_user(name, password, accounts)

    def set_price(self, symbol: str, price: float) -> list[int]:
        """Set a price (same as ``POST /admin/prices``); returns the order ids it filled.

        Raises:
            KeyError: unknown symbol.
            ValueError: price not on tick.
        """
        return self.venue.set_price(symbol, price)[1]

    def register_oauth_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str]
    ) -> None:
        """Register an OAuth application (same as ``POST /admin/oauth/clients``)."""
        self.venue.state.oauth_clients[client_id] = OAuthClient(
            client_id, client_secret, tuple(redirect_uris)
        )

    def reset(self) -> None:
        """Close every socket, forget all state, re-apply the seed (``POST /admin/reset``)."""
        self.hub.reset()
        self.md_hub.close_all("Server reset")
        self.venue.reset()
        self._apply_seed()

    def _apply_seed(self) -> None:
        seed = self._seed
        if seed is None and self.settings.sim_seed:
            seed = load_seed(self.settings.sim_seed)
        if seed is not None:
            created = apply_seed(self.venue, seed)
            log.info("seeded %d users", len(created))


@contextlib.asynccontextmanager
async def running_simulator(
    settings: SimSettings | None = None,
    *,
    seed: Seed | None = None,
    clock: VenueClock | None = None,
) -> AsyncIterator[Simulator]:
    """A started :class:`Simulator` on a free loopback port, stopped on exit."""
    sim = Simulator(settings, host="127.0.0.1", port=0, seed=seed, clock=clock)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
