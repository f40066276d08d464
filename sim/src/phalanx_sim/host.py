"""What the HTTP app and the admin API need from a running simulator (:class:`SimHost`).

:class:`~phalanx_sim.runner.Simulator` builds the app (``app.py``), which builds the admin
router (``admin.py``); both take a :class:`SimHost` rather than the ``Simulator`` itself, so
neither imports the runner and the modules import in one direction only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from phalanx_sim.marketdata import MarketDataHub
from phalanx_sim.settings import SimSettings
from phalanx_sim.state import SimState
from phalanx_sim.venue import Venue
from phalanx_sim.ws import Hub

__all__ = ["SimHost"]


class SimHost(Protocol):
    """A simulator as its HTTP routes see it: the venue, the socket hub, reset."""

    @property
    def settings(self) -> SimSettings:
        """The simulator's settings."""
        ...

    @property
    def venue(self) -> Venue:
        """The venue behind both transports."""
        ...

    @property
    def hub(self) -> Hub:
        """The WebSocket hub."""
        ...

    @property
    def md_hub(self) -> MarketDataHub:
        """The market-data WebSocket hub (ADR-0128)."""
        ...

    @property
    def state(self) -> SimState:
        """The venue's in-memory state."""
        ...

    def reset(self) -> None:
        """Close every socket, forget all state, re-apply the seed."""
        ...

    def register_oauth_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str]
    ) -> None:
        """Register an OAuth application."""
        ...
