"""One NATS user per service, allowed only the subjects that service uses (ADR-0117).

The permissions are derived from :mod:`phalanx_common.subjects` and what each service's code
publishes, consumes, reads and writes; :func:`authorization_block` renders them as the
``authorization`` block of a ``nats-server`` configuration (``deploy/nats/nats.conf`` and the
dev overlay's ``nats.conf`` hold this exact text; ``tests/faults`` checks it and runs the whole
system under these users).

JetStream API subjects a user gets, per stream ``S`` (a KV bucket ``B`` is the stream ``KV_B``):

- every service, for every Phalanx stream and bucket: ``$JS.API.INFO``,
  ``$JS.API.STREAM.INFO.S``, ``.CREATE.S``, ``.UPDATE.S`` (each declares the topology at start;
  none may delete or purge a stream);
- for a stream it consumes: creating, listing, reading and deleting its consumers, pulling
  (``CONSUMER.MSG.NEXT``), message gets (``STREAM.MSG.GET``, ``DIRECT.GET``), acks
  (``$JS.ACK.S.>``) and flow control replies (``$JS.FC.S.>``);
- for a bucket it writes: ``$KV.B.>`` (a bucket it only reads: consuming ``KV_B``).

Every user subscribes to ``_INBOX.>`` only (request replies and push consumer deliveries): data
reaches services through JetStream consumers, never through core subscriptions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from phalanx_common import subjects
from phalanx_common.subjects import Bucket, Buckets, StreamSpec

__all__ = [
    "SERVICE_ACCESS",
    "ServiceAccess",
    "authorization_block",
    "env_password",
    "helm_users",
    "main",
    "permissions",
]


@dataclass(frozen=True)
class ServiceAccess:
    """What one service does on NATS."""

    publishes: tuple[str, ...] = ()
    consumes: tuple[StreamSpec, ...] = ()
    reads: tuple[Bucket, ...] = ()
    writes: tuple[Bucket, ...] = ()


SERVICE_ACCESS: dict[str, ServiceAccess] = {
    # Webhooks become signals; replays are re-published; the signal log follows SIGNALS and
    # ORDERS; the replayer consumes REPLAYS and finds the stored signal in SIGNALS.
    "ingest": ServiceAccess(
        publishes=(subjects.SIGNALS_ALL, subjects.DEAD_LETTERS),
        consumes=(subjects.SIGNALS, subjects.ORDERS, subjects.REPLAYS),
        reads=(Buckets.ACCOUNTS,),
        writes=(Buckets.STRATEGIES, Buckets.SUBSCRIPTIONS, Buckets.SIGNAL_REPEATS),
    ),
    # Logins, tokens, accounts and the OAuth flow's single-use states.
    "auth": ServiceAccess(
        publishes=("auth.>",),
        writes=(
            Buckets.LOGINS,
            Buckets.TOKENS,
            Buckets.ACCOUNTS,
            Buckets.CREDENTIALS,
            Buckets.OAUTH_STATES,
        ),
    ),
    # The planner reads signals and plans batches; workers drain their shards and publish order
    # outcomes and fills; delayed signals are parked and put back on SIGNALS; the kill switch
    # and trading states travel on CONTROL.
    "executor": ServiceAccess(
        publishes=(
            subjects.SIGNALS_ALL,
            "exec.>",
            "orders.>",
            "fills.>",
            subjects.DELAYED_ALL,
            subjects.CONTROL_ALL,
        ),
        consumes=(subjects.SIGNALS, subjects.EXEC, subjects.DELAYED, subjects.CONTROL),
        reads=(Buckets.ACCOUNTS, Buckets.SUBSCRIPTIONS, Buckets.TOKENS, Buckets.STRATEGIES),
        writes=(
            Buckets.INTENTS,
            Buckets.INTENT_LEASES,
            Buckets.SHARD_LEASES,
            Buckets.ACCOUNT_ORDER,
            Buckets.PLANNER_CURSORS,
            Buckets.TRADING_STATE,
            Buckets.GUARDS,
        ),
    ),
    # Positions from ORDERS and FILLS; snapshots of its book (ADR-0122); which login reaches
    # which account, for positions by login (ADR-0124). Reconciliation with the broker
    # (ADR-0125) reads the logins' tokens, records fills fetched from the venue on FILLS, reports
    # drift on CONTROL and, when configured, switches a drifted account to REDUCING.
    "ledger": ServiceAccess(
        publishes=("fills.>", subjects.CONTROL_DRIFT_ALL, subjects.CONTROL_STATE),
        consumes=(subjects.ORDERS, subjects.FILLS),
        reads=(Buckets.ACCOUNTS, Buckets.TOKENS),
        writes=(Buckets.TRADING_STATE, Buckets.LEDGER_SNAPSHOTS),
    ),
}

_TOPOLOGY_BUCKETS: tuple[Bucket, ...] = (
    *subjects.ALL_BUCKETS,
    Buckets.CREDENTIALS,
    Buckets.OAUTH_STATES,
)


def _consuming(stream: str) -> list[str]:
    return [
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.API.CONSUMER.LIST.{stream}",
        f"$JS.API.CONSUMER.NAMES.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def permissions(service: str) -> tuple[list[str], list[str]]:
    """``(publish allow, subscribe allow)`` of one service's user.

    Raises:
        KeyError: for a name not in :data:`SERVICE_ACCESS`.
    """
    access = SERVICE_ACCESS[service]
    topology = [s.name for s in subjects.ALL_STREAMS] + [b.stream for b in _TOPOLOGY_BUCKETS]
    publish: list[str] = ["$JS.API.INFO"]
    for stream in topology:
        publish += [
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.STREAM.CREATE.{stream}",
            f"$JS.API.STREAM.UPDATE.{stream}",
        ]
    publish += access.publishes
    for spec in access.consumes:
        publish += _consuming(spec.name)
    for bucket in (*access.reads, *access.writes):
        publish += _consuming(bucket.stream)
    publish += [f"$KV.{b.name}.>" for b in access.writes]
    return _unique(publish), ["_INBOX.>"]


def env_password(service: str) -> str:
    """The ``nats-server`` variable holding a service's password: ``$PHALANX_NATS_PASSWORD_<S>``
    (read from the server's environment)."""
    return f"$PHALANX_NATS_PASSWORD_{service.upper()}"


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def authorization_block(
    password_of: Callable[[str], str] = env_password, extra_users: Iterable[str] = ()
) -> str:
    """The ``authorization { users: [...] }`` block: one user per service, named after it.

    Args:
        password_of: A service's password as config text: a variable reference (the default,
            for deployments) or a quoted literal (tests).
        extra_users: More user entries, verbatim (e.g. an operator's).
    """
    lines = ["authorization {", "  users: ["]
    for service in SERVICE_ACCESS:
        publish, subscribe = permissions(service)
        lines += [
            f"    {{user: {service}, password: {password_of(service)}, permissions: {{",
            f"      publish: {{allow: [{_quoted(publish)}]}},",
            f"      subscribe: {{allow: [{_quoted(subscribe)}]}}",
            "    }}",
        ]
    lines += [f"    {user}" for user in extra_users]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def helm_users() -> list[dict[str, object]]:
    """The same users for the NATS Helm chart's ``config.merge.authorization.users`` (passwords
    as ``<< $PHALANX_NATS_PASSWORD_<SERVICE> >>``, read from the server pods' environment)."""
    users: list[dict[str, object]] = []
    for service in SERVICE_ACCESS:
        publish, subscribe = permissions(service)
        users.append(
            {
                "user": service,
                "password": f"<< {env_password(service)} >>",
                "permissions": {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}},
            }
        )
    return users


def main(argv: list[str] | None = None) -> int:
    """``python -m phalanx_common.nats_permissions [--helm]``: print the users (nats.conf
    block, or YAML-compatible JSON for the Helm values)."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--helm"]:
        print(json.dumps(helm_users(), indent=2))
    else:
        print(authorization_block(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
