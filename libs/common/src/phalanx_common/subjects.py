"""The one place that names every stream, subject, consumer and KV bucket.

Nobody writes a subject string anywhere else: services call the builders here. See ADR-0002.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "ALL_BUCKETS",
    "ALL_STREAMS",
    "AUTH",
    "CONTROL",
    "DELAYED",
    "EXEC",
    "FILLS",
    "INTENT_CLAIM_TTL_S",
    "ORDERS",
    "REPLAYS",
    "SIGNALS",
    "UNATTRIBUTED_FILLS",
    "Bucket",
    "Buckets",
    "Consumers",
    "Retention",
    "StreamSpec",
    "auth_subject",
    "delayed_subject",
    "drift_subject",
    "exec_consumer",
    "exec_subject",
    "fill_fees_subject",
    "fills_subject",
    "orders_subject",
    "planned_subject",
    "replay_subject",
    "safe_token",
    "signals_subject",
]

_TOKEN_OK = re.compile(r"^[A-Za-z0-9_-]+$")


def safe_token(value: str | int) -> str:
    """Return ``value`` as a single NATS subject token, refusing anything that could escape it.

    Raises:
        ValueError: if the value is empty or holds characters outside ``[A-Za-z0-9_-]``.
    """
    text = str(value)
    if not _TOKEN_OK.match(text):
        raise ValueError(f"not a valid subject token: {text!r} (allowed: letters, digits, _ and -)")
    return text


class Retention(Enum):
    """How a stream keeps its messages."""

    LIMITS = "limits"
    WORK_QUEUE = "workqueue"


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream as Phalanx declares it."""

    name: str
    subjects: tuple[str, ...]
    retention: Retention = Retention.LIMITS
    duplicate_window_s: float = 120.0
    max_age_s: float = 0.0  # 0 = keep forever
    description: str = ""
    max_bytes: int = -1  # -1 = no size limit (ADR-0087)
    # At max_bytes: refuse new messages (a publish fails) instead of dropping the oldest. For
    # the streams the ledger replays from their first message: losing the oldest would be silent.
    discard_new: bool = False
    # The age limit is the ledger's to set (its snapshots cover what ages out; ADR-0122):
    # Bus.ensure_topology keeps an existing stream's max_age unless given one for these streams.
    ledger_history: bool = False


_DAY_S = 24 * 3600.0
#: how long a claim stays in the ``intents`` bucket after its last change (ADR-0185)
INTENT_CLAIM_TTL_S = 3 * _DAY_S
_MIB = 1024 * 1024
_GIB = 1024 * _MIB


@dataclass(frozen=True)
class Bucket:
    """A JetStream key-value bucket as Phalanx declares it."""

    name: str
    history: int = 1
    ttl_s: float = 0.0
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def stream(self) -> str:
        """The JetStream stream that holds the bucket."""
        return f"KV_{self.name}"


SIGNALS = StreamSpec(
    "SIGNALS",
    ("signals.>",),
    duplicate_window_s=24 * 3600.0,
    description="Every accepted webhook signal, kept for audit and replay",
    max_age_s=30 * _DAY_S,  # the replay and signal-log horizon (ADR-0087)
    max_bytes=1 * _GIB,
)
EXEC = StreamSpec(
    "EXEC",
    ("exec.>",),
    retention=Retention.WORK_QUEUE,
    duplicate_window_s=24 * 3600.0,
    description="Per-shard batches of order intents, consumed once by the owning executor",
    max_age_s=_DAY_S,  # intents expire with their signal long before
    max_bytes=1 * _GIB,
)
# ORDERS and FILLS: the ledger rebuilds positions from them (fills wait for the OrderAccepted
# that names their account), so no age limit unless the ledger sets one its snapshots cover
# (PHALANX_LEDGER_HISTORY_DAYS, ADR-0122), and a full stream refuses new messages rather than
# dropping the oldest (ADR-0087).
ORDERS = StreamSpec(
    "ORDERS",
    ("orders.>",),
    duplicate_window_s=3600.0,
    description="Order outcomes",
    max_bytes=4 * _GIB,
    discard_new=True,
    ledger_history=True,
)
FILLS = StreamSpec(
    "FILLS",
    ("fills.>",),
    duplicate_window_s=3600.0,
    description="Venue fills",
    max_bytes=2 * _GIB,
    discard_new=True,
    ledger_history=True,
)
AUTH = StreamSpec(
    "AUTH",
    ("auth.>",),
    description="Logins, tokens and account links",
    max_age_s=30 * _DAY_S,
    max_bytes=256 * _MIB,
)
CONTROL = StreamSpec(
    "CONTROL",
    ("control.>",),
    description="Trading state changes",
    max_age_s=30 * _DAY_S,
    max_bytes=256 * _MIB,
)
DELAYED = StreamSpec(
    "DELAYED",
    ("delayed.>",),
    retention=Retention.WORK_QUEUE,
    # Longer than the longest delay (3,600 s): parking a signal again is always a duplicate.
    duplicate_window_s=2 * 3600.0,
    description="Signals with a delay, parked until due, then put back on SIGNALS (ADR-0040)",
    max_age_s=_DAY_S,
    max_bytes=256 * _MIB,
)

REPLAYS = StreamSpec(
    "REPLAYS",
    ("signals-replay.>",),
    # A retried request (same Nats-Msg-Id) is stored once; ingest also derives the re-run's id
    # from that message id, so a redelivered request re-runs nothing twice (ADR-0090).
    duplicate_window_s=24 * 3600.0,
    max_age_s=30 * 24 * 3600.0,
    max_bytes=64 * _MIB,
    description="Operators' requests to re-run a stored signal under a new id (ADR-0090)",
)

ALL_STREAMS: tuple[StreamSpec, ...] = (
    SIGNALS,
    EXEC,
    ORDERS,
    FILLS,
    AUTH,
    CONTROL,
    DELAYED,
    REPLAYS,
)


def signals_subject(strategy_id: str) -> str:
    """Subject of a strategy's received signals."""
    return f"signals.{safe_token(strategy_id)}"


SIGNALS_ALL = "signals.>"


def delayed_subject(strategy_id: str) -> str:
    """Subject of a strategy's signals parked until their delay has passed."""
    return f"delayed.{safe_token(strategy_id)}"


DELAYED_ALL = "delayed.>"
SIGNALS_REPLAY = "signals-replay.>"


def replay_subject(strategy_id: str) -> str:
    """Subject on which an operator asks to re-run one of a strategy's stored signals."""
    return f"signals-replay.{safe_token(strategy_id)}"


def exec_subject(shard: int) -> str:
    """Subject of the batch commands for one shard."""
    return f"exec.{int(shard)}"


def exec_consumer(shard: int) -> str:
    """Durable consumer name that drains one shard's batches."""
    return f"exec-shard-{int(shard)}"


def orders_subject(account_id: int) -> str:
    """Subject of one account's order outcomes."""
    return f"orders.{int(account_id)}"


def planned_subject(strategy_id: str) -> str:
    """Subject of the planner's verdict on each signal of a strategy."""
    return f"orders.planned.{safe_token(strategy_id)}"


#: fills whose account neither the view nor the venue could tell (account_id 0; ADR-0061)
UNATTRIBUTED_FILLS = "fills.unattributed"


def fills_subject(account_id: int) -> str:
    """Subject of one account's fills."""
    return f"fills.{int(account_id)}"


def fill_fees_subject(account_id: int) -> str:
    """Subject of the fees the venue reports for one account's fills (in FILLS; ADR-0127)."""
    return f"fills.fees.{int(account_id)}"


def auth_subject(login_id: str) -> str:
    """Subject of one login's auth events."""
    return f"auth.{safe_token(login_id)}"


CONTROL_STATE = "control.state"
CONTROL_KILL = "control.kill"
CONTROL_FLATTENED = "control.flattened"
CONTROL_ALL = "control.>"
DEAD_LETTERS = "control.terminated"
CONTROL_DRIFT_ALL = "control.drift.>"


def drift_subject(account_id: int) -> str:
    """Subject of the ledger's ``PositionDrift`` reports of one account (ADR-0125)."""
    return f"control.drift.{int(account_id)}"


class Consumers:
    """Durable consumer names."""

    PLANNER = "planner"
    DELAYED = "delayed-signals"
    REPLAYER = "replayer"  # ingest's consumer of REPLAYS (ADR-0090)

    @staticmethod
    def control(ordinal: int) -> str:
        """Durable consumer through which one executor replica follows the kill switch."""
        return f"control-r{int(ordinal)}"

    LEDGER = "ledger"


class Buckets:
    """Key-value buckets."""

    STRATEGIES = Bucket("strategies", description="Strategy definitions (secret stored hashed)")
    SUBSCRIPTIONS = Bucket(
        "subscriptions", description="Key <strategy>.<account>: sizing and enablement"
    )
    ACCOUNTS = Bucket("accounts", description="Broker accounts and the login that owns each")
    LOGINS = Bucket("logins", description="Broker logins and how to reach them")
    TOKENS = Bucket("tokens", description="Current access token per login")
    # A claim outlives every delivery of its intent (ADR-0185): each delivery comes from an EXEC
    # message, kept at most EXEC.max_age_s (1 day) and stored only while its signal was not past
    # its deadline (at most signal_ages.LONGEST_DEADLINE_S, 25 h, after receipt). So no delivery
    # comes later than 49 h after receipt, and the claim, written after receipt, lives 72 h.
    INTENTS = Bucket(
        "intents",
        history=1,
        ttl_s=INTENT_CLAIM_TTL_S,
        description="Claimed order intents and their state (each gone 3 days after its last "
        "change; ADR-0185)",
    )
    CREDENTIALS = Bucket(
        "credentials", description="Opt-in API-access credentials per login, sealed (AES-GCM)"
    )
    OAUTH_STATES = Bucket(
        "oauth-states", ttl_s=600.0, description="Pending OAuth state + PKCE verifier (single use)"
    )
    TRADING_STATE = Bucket(
        "trading_state",
        description="ACTIVE/REDUCING/HALTED per global, strategy.<id>, account.<id>",
    )
    GUARDS = Bucket("guards", description="Per-account max contracts and daily loss limit")
    SIGNAL_REPEATS = Bucket(
        "signal-repeats",
        ttl_s=3600.0,
        description="Digest of an id-less webhook body -> the signal it became and when "
        "(its strategy's repeat window tells a resend from a new signal; ADR-0045)",
    )
    SHARD_LEASES = Bucket(
        "shard_leases", description="Executor replica heartbeats; shards are dealt over the live"
    )
    PLANNER_CURSORS = Bucket(
        "planner_cursors",
        description="Per signal subject: stream sequence of the last signal settled (ADR-0040)",
    )
    INTENT_LEASES = Bucket(
        "intent_leases",
        ttl_s=6 * 3600.0,
        description="Per claimed intent: its owner and when the owner's lease runs out (ADR-0050)",
    )
    ACCOUNT_ORDER = Bucket(
        "account_order",
        description="Per account: its unresolved intents in signal order (ADR-0051)",
    )
    LEDGER_SNAPSHOTS = Bucket(
        "ledger_snapshots",
        description="The ledger's book: key 'head' names the latest snapshot, 'a.<n>'/'b.<n>' "
        "hold its chunks (two slots, written in turn; ADR-0122)",
    )


ALL_BUCKETS: tuple[Bucket, ...] = (
    Buckets.STRATEGIES,
    Buckets.SUBSCRIPTIONS,
    Buckets.ACCOUNTS,
    Buckets.LOGINS,
    Buckets.TOKENS,
    Buckets.INTENTS,
    Buckets.TRADING_STATE,
    Buckets.GUARDS,
    Buckets.SHARD_LEASES,
    Buckets.SIGNAL_REPEATS,
    Buckets.PLANNER_CURSORS,
    Buckets.INTENT_LEASES,
    Buckets.ACCOUNT_ORDER,
    Buckets.LEDGER_SNAPSHOTS,
)

# The benchmark's calibration (bench/src/phalanx_bench/floor.py): its own bucket and stream, so
# measuring the per-intent floor never touches the services' intents or outcomes. No service
# declares or reads them.
BENCH_FLOOR_BUCKET = Bucket("bench-floor", history=1, description="Benchmark floor: intent claims")
BENCH_FLOOR_STREAM = StreamSpec(
    "BENCH_FLOOR",
    ("bench-floor.>",),
    duplicate_window_s=3600.0,
    description="Benchmark floor: outcome-sized messages",
)
