"""Service lifecycle: start, wait for SIGTERM/SIGINT, stop within a budget."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from phalanx_common.errors import DependencyUnavailable
from phalanx_common.logs import Scrubber, setup_logging
from phalanx_common.telemetry import configure_tracing, shutdown_tracing

__all__ = [
    "Service",
    "configure_logging",
    "dump_tasks",
    "loop_factory",
    "run_service",
    "run_service_main",
    "secrets_of",
]

log = logging.getLogger(__name__)

S = TypeVar("S")


class Service(Protocol):
    """A long-running component with an explicit start and an idempotent stop."""

    async def start(self) -> None:
        """Begin work; return once running."""
        ...

    async def stop(self) -> None:
        """Stop work and release resources; safe to call twice."""
        ...


def configure_logging(
    level: str, fmt: str = "json", service: str = "", secrets: Iterable[str] = ()
) -> None:
    """Log to stderr, one line per record: JSON by default, ``text`` for a terminal
    (:func:`phalanx_common.logs.setup_logging`)."""
    setup_logging(level, fmt, service, secrets)


def secrets_of(settings: object) -> list[str]:
    """The settings values no log line may show: the admin token, the token keys (and each
    key's material), the venue API secret and the OAuth client secret."""
    names = ("admin_token", "token_keys", "sec", "oauth_client_secret")
    values = [str(getattr(settings, name, "") or "") for name in names]
    keys = str(getattr(settings, "token_keys", "") or "")
    values += [part.partition(":")[2] for part in keys.split(",")]
    return [v for v in values if v]


async def run_service(
    factory: Callable[[S], Awaitable[Service]],
    settings: S,
    shutdown_budget_s: float,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Build and start a service, run until a stop signal, then stop it within a budget."""
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR2, dump_tasks)
    service = await factory(settings)
    try:
        await service.start()
        await stop.wait()
        log.info("stop requested; shutting down (budget %.1fs)", shutdown_budget_s)
    finally:
        try:
            await asyncio.wait_for(service.stop(), shutdown_budget_s)
        except TimeoutError:
            log.error("shutdown exceeded its budget of %.1fs", shutdown_budget_s)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
            loop.remove_signal_handler(sig)


def dump_tasks() -> None:
    """Log where every asyncio task of the process is waiting (``kill -USR2 <pid>``).

    For a process that seems stuck: one WARNING record per task with its stack.
    """
    tasks = asyncio.all_tasks()
    log.warning("task dump: %d tasks", len(tasks))
    for task in tasks:
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        log.warning("task %s:\n%s", task.get_name(), out.getvalue())


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the event loop called ``name`` (None: the standard one)."""
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise ValueError(f"unknown event loop {name!r}: asyncio or uvloop")
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed; running on the standard event loop")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def collect_less_often(threshold: int) -> None:
    """Run the cyclic garbage collector's young generation every ``threshold`` allocations
    instead of Python's 700 (0: leave it); the older generations keep at least their default
    ratios (ADR-0186).

    A service's objects nearly all die by reference count long before the young generation
    fills; at 700 the collector ran so often that it was ~13 % of the executor's CPU (perf).
    """
    if threshold <= 0:
        return
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, max(gen1, 10), max(gen2, 10))


def run_service_main(
    name: str,
    factory: Callable[[S], Awaitable[Service]],
    settings: S,
    log_level: str,
    shutdown_budget_s: float,
    event_loop: str = "asyncio",
) -> int:
    """Entry-point body: run the service and turn a missing dependency into exit code 2.

    ``event_loop``: ``asyncio`` (the standard loop) or ``uvloop`` (ADR-0145; the standard loop
    when uvloop is not installed).

    Logs as ``PHALANX_LOG_FORMAT`` says (``settings.log_format``: ``json`` or ``text``), with
    the service's secrets scrubbed. Traces are exported when the standard ``OTEL_*``
    variables name an endpoint (ADR-0070); what is buffered is exported before the process
    ends.
    """
    secrets = secrets_of(settings)
    configure_logging(log_level, str(getattr(settings, "log_format", "json")), name, secrets)
    collect_less_often(int(getattr(settings, "gc_threshold", 0)))
    configure_tracing(name)
    try:
        with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
            runner.run(run_service(factory, settings, shutdown_budget_s))
    except DependencyUnavailable as exc:
        # the address may carry credentials (nats://user:pass@...): scrubbed like every log line
        print(f"{name}: {Scrubber(secrets)(str(exc))}", file=sys.stderr)
        return 2
    finally:
        shutdown_tracing()
    return 0
