"""Phalanx Tradovate simulator: a protocol-faithful venue for tests, CI, demos and benchmarks.

REST under ``/v1`` and the trading WebSocket at ``/v1/websocket`` follow Tradovate's wire
protocol (docs/tradovate-protocol.md); ``/admin`` creates users, moves prices and inspects state.
Run it with ``python -m phalanx_sim`` / ``phalanx-sim``, or in-process with :class:`Simulator`.
"""

from phalanx_sim.runner import Simulator, running_simulator
from phalanx_sim.seed import Seed, SeedUser
from phalanx_sim.settings import SimSettings, load_sim_settings
from phalanx_sim.venue import CreatedUser, Venue

__all__ = [
    "CreatedUser",
    "Seed",
    "SeedUser",
    "SimSettings",
    "Simulator",
    "Venue",
    "load_sim_settings",
    "running_simulator",
]
