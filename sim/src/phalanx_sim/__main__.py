"""``python -m phalanx_sim`` / ``phalanx-sim``: serve the simulator until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from phalanx_sim.runner import Simulator
from phalanx_sim.settings import load_sim_settings

__all__ = ["main"]


async def _serve() -> None:
    settings = load_sim_settings()
    logging.basicConfig(
        level=settings.sim_log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if settings.sim_gc_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(settings.sim_gc_threshold, max(gen1, 20), max(gen2, 100))
    sim = Simulator(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(
        f"phalanx-sim: REST {sim.rest_url}  WebSocket {sim.ws_url}  admin {sim.url}/admin",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main() -> None:
    """Entry point: read ``PHALANX_SIM_*`` settings and serve."""
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
