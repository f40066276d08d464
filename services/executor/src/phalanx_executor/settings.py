"""Executor settings (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from typing import Literal

from phalanx_common.settings import CommonSettings

__all__ = ["ExecutorSettings"]


class ExecutorSettings(CommonSettings, frozen=True, kw_only=True):
    """Everything an executor replica needs to know.

    Attributes:
        replica_ordinal: this replica's index (a StatefulSet ordinal), 0-based.
        replicas: how many replicas are expected (informational: shards are dealt over the
            replicas whose heartbeats are live, see membership.py).
        shards: number of shards; logins map to shards by FNV-1a hash (ADR-0003).
        batch_size: intents per batch command (the seed's 25; pacing comes from the budget).
        batch_pause_s: optional pause between batches of one shard (the seed's 0.5 s knob; 0).
        tradovate_ws_url: the venue's trading WebSocket.
        login_windows: per-login rate windows as ``[[limit, seconds], ...]``.
        ip_windows: per-egress-IP rate windows (empty: no IP budget).
        egress_ip: the name of this replica's egress IP in the limiter's keys (replicas that
            share an egress IP must share the name: Tradovate keys some limits by IP).
        sync_ip_windows: the egress IP's budget for ``user/syncrequest`` (Tradovate: 300 an
            hour per IP, whichever login syncs); empty turns it off (ADR-0056).
        max_sockets: cap on broker WebSockets held by this replica.
        request_timeout_s: how long to wait for a venue response before the outcome is unknown.
        shard_concurrency: batches of one shard executed at once.
        intents_in_flight: intents this replica works on at once across its shards; batches
            beyond it wait, first come first served, so a fan-out's first orders leave early
            (ADR-0165; 0: no bound).
        intent_window_hold_s: the longest a batch counts against ``intents_in_flight`` (a
            slow batch never holds the others back longer).
        redis_max_connections: size of the (blocking) Redis connection pool.
        reversal_wait_s: how long a reversal waits for the position to be flat before entering.
        reconcile_grace_s: after a send with an unknown outcome (or a claim left by another
            replica), how long before "not found by clOrdId" counts as proof of absence.
        reconcile_deadline_s: how long one delivery keeps trying to resolve an unknown outcome.
        exec_ack_wait_s: ack wait of the shard consumers (in-progress keeps long work alive).
        executor_port: HTTP port of replica 0; replica N listens on ``executor_port + N``
            (0: any free port).
        lease_ttl_s: a replica counts as gone this long after its last heartbeat.
        lease_renew_s: heartbeat interval.
        planner_ack_wait_s: ack wait of the planner's SIGNALS consumer (ADR-0040).
        delay_recheck_s: the longest a parked (delayed) signal waits before it is looked at
            again (ADR-0040).
        claim_lease_s: lease of a claim's owner, renewed every quarter of it while the owner
            works on the intent; nobody takes over a claim whose lease is alive (ADR-0050).
        permit_handback_s: a permit wait longer than this hands the unsent intent back, so a
            budget-bound or locked-out login never holds a shard's slots (ADR-0050; 0: never).
        permit_max_age_s: a request not sent within this long of its permit (a slow send-time
            check, a starved event loop) takes another permit, the old one still counting; keep
            it below the margin by which ``login_windows`` outlast the venue's windows (1 s:
            61 s against 60 s), ADR-0062. 0 never re-takes.
        lockout_s: how long a login's requests stay blocked after the venue answers HTTP
            423/429 (Tradovate's lockout is an hour, restarted by every request during it, so
            the block must be at least the venue's; ADR-0111).
        token_expiry_margin_s: nothing is sent on a token that expires within this long (clock
            skew and the request's time on the wire); the login waits for a renewed token
            (ADR-0110).
        exec_max_deliveries: deliveries of a batch before it is dead-lettered with an outcome
            per unfinished intent (ADR-0050; intents also expire at their signal's deadline).
        event_loop: ``uvloop`` (fewer CPU seconds per intent, ADR-0145) or ``asyncio``.
    """

    service_name: str = "executor"
    replica_ordinal: int = 0
    replicas: int = 1
    shards: int = 16
    batch_size: int = 25
    batch_pause_s: float = 0.0
    tradovate_ws_url: str = "ws://127.0.0.1:8900/v1/websocket"
    # 61 s and 3,601 s: one second of allowance for the jitter between taking a permit and the
    # request reaching the venue, whose windows are 60 s and 3,600 s (ADR-0004).
    login_windows: tuple[tuple[int, float], ...] = ((70, 61.0), (4500, 3601.0))
    ip_windows: tuple[tuple[int, float], ...] = ()
    egress_ip: str = "default"
    sync_ip_windows: tuple[tuple[int, float], ...] = ((290, 3601.0),)
    max_sockets: int = 2000
    connect_concurrency: int = 50
    request_timeout_s: float = 10.0
    shard_concurrency: int = 4
    intents_in_flight: int = 200
    intent_window_hold_s: float = 1.0
    redis_max_connections: int = 64
    reversal_wait_s: float = 10.0
    reconcile_grace_s: float = 12.0
    reconcile_deadline_s: float = 60.0
    exec_ack_wait_s: float = 30.0
    executor_port: int = 8300
    lease_ttl_s: float = 10.0
    lease_renew_s: float = 3.0
    planner_ack_wait_s: float = 30.0
    delay_recheck_s: float = 60.0
    claim_lease_s: float = 15.0
    permit_handback_s: float = 10.0
    permit_max_age_s: float = 0.5
    exec_max_deliveries: int = 100
    token_expiry_margin_s: float = 5.0
    lockout_s: float = 3600.0
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
