"""The ledger service: replay FILLS and ORDERS into the projection, then serve it over HTTP."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from fastapi import FastAPI

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.events import (
    AnyEvent,
    FillFees,
    FillReceived,
    IntentExpired,
    OrderAccepted,
    OrderRejected,
    SignalPlanned,
)
from phalanx_common.health import Readiness
from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits
from phalanx_common.kvmirror import KvMirror
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.records import AccountRecord
from phalanx_common.telemetry import child_span
from phalanx_ledger.admin import create_app
from phalanx_ledger.admin_recon import recon_router
from phalanx_ledger.book_state import Covered
from phalanx_ledger.broker_check import BrokerCheck, build_broker_check
from phalanx_ledger.fanout import FanoutTracker
from phalanx_ledger.follower import StreamFollower
from phalanx_ledger.metrics import LedgerMetrics
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.recon_metrics import ReconciliationCollector
from phalanx_ledger.settings import LedgerSettings
from phalanx_ledger.snapshot_store import SnapshotStore
from phalanx_ledger.snapshots import Snapshotter, load_snapshot
from phalanx_ledger.startup_gc import collector_paused

__all__ = ["LedgerService", "build_ledger"]

log = logging.getLogger(__name__)


class LedgerService:
    """A built ledger; :meth:`start` replays the streams and serves, :meth:`stop` releases all.

    Args:
        settings: Ledger settings.
        bus: The connected bus (owned: closed by :meth:`stop`).
        projection: The positions projection the followers feed.
        followers: One follower per consumed stream.
        app: The FastAPI application.
    """

    def __init__(
        self,
        settings: LedgerSettings,
        bus: Bus,
        projection: PositionsProjection,
        followers: list[StreamFollower],
        app: FastAPI,
        metrics: LedgerMetrics | None = None,
        snapshots: Snapshotter | None = None,
        accounts: KvMirror[AccountRecord] | None = None,
        broker_check: BrokerCheck | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.projection = projection
        self.followers = followers
        self.app = app
        self.metrics = metrics
        self.snapshots = snapshots
        self.accounts = accounts
        self.loaded: Covered | None = None  # the snapshot the book started from (ADR-0122)
        self.broker_check = broker_check  # reconciliation with the broker (ADR-0125)
        self._http = HttpServer(
            app,
            settings.http_host,
            settings.ledger_port,
            name="ledger",
            limits=HttpLimits.from_settings(settings),  # serves /admin (ADR-0120)
        )

    @property
    def url(self) -> str:
        """Base URL of the running HTTP server (its real port once started)."""
        return self._http.url

    async def start(self) -> None:
        """Replay every stream from its first message, then serve HTTP.

        Returns once the replay reached the end each stream had at start (or, after
        ``replay_timeout_s``, serves anyway with ``/healthz`` saying ``replaying``).
        """
        if self.accounts is not None:
            await self.accounts.start()
        with collector_paused():  # the book is built: no cyclic GC walking it (ADR-0122)
            await self._build_book()
        log.info(
            "ledger replayed up to %d fills (%d duplicates)",
            self.projection.fills_applied,
            self.projection.duplicate_fills,
        )
        if self.broker_check is not None:
            await self.broker_check.start()
        await self._http.start()
        if self.metrics is not None:
            self.metrics.start()
        if self.snapshots is not None and all(f.caught_up for f in self.followers):
            self.snapshots.start()
        elif self.snapshots is not None:
            log.warning("no snapshots until a restart: the start-up replay did not finish")

    async def _build_book(self) -> None:
        """Load the latest snapshot, if any, and replay what follows it."""
        if self.snapshots is not None:
            store = self.snapshots.store
            ends = await self.bus.answered(self._stream_ends, "the streams' ends")
            # A read that times out restores nothing (the book is filled only once every chunk
            # is read), so it is simply asked again: a cluster just created may be slow.
            head = await self.bus.answered(
                lambda: load_snapshot(store, self.projection, ends), "the ledger snapshot"
            )
            self.snapshots.since(head)
            self.loaded = head.covered if head is not None else None
        fills_seq, orders_seq = (
            (self.loaded.fills_seq, self.loaded.orders_seq) if self.loaded else (0, 0)
        )
        for follower, after in zip(self.followers, (fills_seq, orders_seq), strict=True):
            await follower.start(after)
        for follower in self.followers:
            if not await follower.wait_caught_up(self.settings.replay_timeout_s):
                log.warning("replay of %s still running; serving meanwhile", follower.name)

    async def _stream_ends(self) -> dict[str, int]:
        ends: dict[str, int] = {}
        for follower in self.followers:
            info = await self.bus.js.stream_info(follower.name)
            ends[follower.name] = int(info.state.last_seq)
        return ends

    async def stop(self) -> None:
        """Stop serving and following, close NATS (idempotent)."""
        if self.snapshots is not None:
            await self.snapshots.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        await self._http.stop()
        if self.broker_check is not None:
            await self.broker_check.stop()
        for follower in self.followers:
            await follower.stop()
        if self.accounts is not None:
            await self.accounts.stop()
        await self.bus.close()


def _dispatcher(
    projection: PositionsProjection, fanout: FanoutTracker | None = None
) -> Callable[[AnyEvent], None]:
    def apply(event: AnyEvent) -> None:
        if isinstance(event, FillReceived):
            attributes = {
                "phalanx.fill_id": event.fill_id,
                "phalanx.account_id": event.account_id,
                "phalanx.order_id": event.order_id,
            }
            with child_span("project fill", attributes):  # live fills only (ADR-0070)
                projection.apply_fill(event)
        elif isinstance(event, FillFees):
            projection.apply_fees(event)  # ADR-0127
        elif isinstance(event, OrderAccepted | OrderRejected):
            projection.apply_order(event)
            if fanout is not None:
                fanout.outcome(event.signal_id, event.intent_id, event.ts_event)
        elif fanout is None:
            return
        elif isinstance(event, SignalPlanned):
            fanout.planned(event)
        elif isinstance(event, IntentExpired) and event.stage == "before-send":
            fanout.outcome(event.signal_id, event.intent_id, event.ts_event)

    return apply


async def _apply_history_limit(bus: Bus, settings: LedgerSettings) -> None:
    """Give FILLS and ORDERS their age limit (once a snapshot covers their messages)."""
    await bus.ensure_topology(
        settings.stream_replicas,
        settings.stream_byte_limits,
        ledger_history_s=settings.ledger_history_s,
    )
    log.info(
        "FILLS and ORDERS now keep %s days; older history is in the ledger's snapshots",
        settings.ledger_history_days,
    )


async def build_ledger(settings: LedgerSettings, clock: Clock | None = None) -> LedgerService:
    """Connect to NATS, declare the topology and assemble the ledger (not yet started).

    ``clock`` paces reconciliation with the broker (default: the real clock).

    Raises:
        DependencyUnavailable: if NATS cannot be reached.
    """
    bus = await Bus.connect(settings.nats_url, "ledger", auth=NatsAuth.from_settings(settings))
    try:
        await bus.ensure_topology(
            settings.stream_replicas,
            settings.stream_byte_limits,
            # Keeping everything is always safe; an age limit only once a snapshot covers
            # what it would remove (below: after the first snapshot saved; ADR-0122).
            ledger_history_s=None if settings.ledger_history_s else 0.0,
        )
        snapshot_kv = await bus.key_value(subjects.Buckets.LEDGER_SNAPSHOTS)
        accounts_kv = await bus.key_value(subjects.Buckets.ACCOUNTS)
    except BaseException:
        await bus.close()
        raise
    projection = PositionsProjection()
    followers: list[StreamFollower] = []
    metrics = LedgerMetrics(bus, projection, followers)  # ADR-0075: the ledger's own registry
    # Fan-out is observed only once the ORDERS replay is done: history is not latency.
    fanout = FanoutTracker(metrics.observe_fanout, live=lambda: followers[1].caught_up)
    apply = _dispatcher(projection, fanout)
    followers += [
        StreamFollower(bus, subjects.FILLS, apply),
        StreamFollower(bus, subjects.ORDERS, apply),
    ]
    readiness = (
        Readiness()
        .add("nats", lambda: bool(bus.nc.is_connected))
        .add("replay", lambda: all(f.caught_up for f in followers))
    )
    accounts = KvMirror(accounts_kv, AccountRecord, "accounts")  # login -> accounts (ADR-0124)
    snapshots = (
        Snapshotter(
            SnapshotStore(snapshot_kv),
            projection,
            followers,
            settings.snapshot_every_fills,
            settings.snapshot_interval_s,
            on_first_save=functools.partial(_apply_history_limit, bus, settings)
            if settings.ledger_history_s
            else None,
        )
        if settings.snapshot_interval_s > 0
        else None
    )
    app = create_app(
        projection,
        followers,
        metrics.registry,
        readiness,
        settings.admin_token,
        snapshot_status=snapshots.status if snapshots is not None else None,
        accounts_of_login=lambda login: sorted(
            record.account_id for record in accounts.values() if record.login_id == login
        ),
    )
    check = await build_broker_check(
        settings, bus, projection, ready=lambda: all(f.caught_up for f in followers), clock=clock
    )
    app.include_router(
        recon_router(
            projection,
            check.reconciler,
            settings.admin_token,
            quotes=check.quotes,  # ADR-0128
            now_ns=(clock or LiveClock()).time_ns,
        )
    )
    metrics.registry.register(ReconciliationCollector(check.reconciler))
    return LedgerService(
        settings,
        bus,
        projection,
        followers,
        app,
        metrics,
        snapshots=snapshots,
        accounts=accounts,
        broker_check=check,
    )
