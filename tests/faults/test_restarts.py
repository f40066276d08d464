"""The ledger restarted during fills (SIGKILL, then SIGTERM), and an executor replica stopped
gracefully in the middle of a batch.

Four logins x three accounts over two executor replicas, the whole system as processes; every
login paced at one request per 0.5 s, so each fan-out lasts a few seconds. Three signals, each
sent once the previous one has an outcome on every account: buy 2, sell 1 (a reversal:
liquidate, then sell), buy 3 (another reversal), each at another price. During the first
fan-out the replica working the most logins is stopped with SIGTERM (one request per account:
its logins still have intents waiting for a permit); while the second signal's fills arrive
the ledger is SIGKILLed and started again; during the third it is stopped with SIGTERM and
started again.

Must hold: the ledger's book (``GET /positions``: net position, contracts bought and sold, fills
per account and contract) equals the venue's — what a ledger that never stopped shows, since
the projection is a pure function of the fills (services/ledger/tests/test_service.py replays
the same projection at unit level); the stopped replica exits 0, its unsent intents were handed
back and placed by the other replica (the intents bucket says who placed each), and every
account has exactly the orders its signals ask for — none lost, none twice.

Also covering the graceful stop: services/executor/tests/test_graceful_stop.py (unit level: the
heartbeat is deleted only after the unsent intents are handed back) and tests/e2e/test_chaos.py
(a replica stopped during a 30-signal run; marked ``chaos``, so not in the default run).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
import pytest_asyncio
from nats.js.errors import KeyNotFoundError
from tests.faults.rig_tokens import FaultRig, fault_system, restart, stop, until

from phalanx_common import ids, subjects
from phalanx_common.records import IntentRecord
from phalanx_executor.sharding import shard_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

LOGINS = 4
ACCOUNTS_PER_LOGIN = 3
SIGNALS: list[tuple[dict[str, Any], float]] = [
    ({"ticker": "MNQ1!", "action": "buy", "quantity": 2}, 21000.0),
    ({"ticker": "MNQ1!", "action": "sell", "quantity": 1}, 21010.0),
    ({"ticker": "MNQ1!", "action": "buy", "quantity": 3}, 20990.0),
]
# per account: buy 2; liquidate 2 + sell 1; liquidate 1 + buy 3
ORDERS_PER_ACCOUNT = 5
FINAL_POSITION = 3


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultRig]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    env = {
        "PHALANX_LOGIN_WINDOWS": "[[1, 0.5]]",
        "PHALANX_LEASE_TTL_S": "2",
        "PHALANX_LEASE_RENEW_S": "0.5",
        "PHALANX_EXEC_ACK_WAIT_S": "5",
        "PHALANX_CLAIM_LEASE_S": "3",
        "PHALANX_RECONCILE_GRACE_S": "3",
    }
    async with fault_system(
        tmp_path,
        logins=LOGINS,
        accounts_per_login=ACCOUNTS_PER_LOGIN,
        extra_env=env,
        executors=2,
    ) as running:
        yield running


async def _under_way(rig: FaultRig, signal_id: str) -> None:
    """Until some accounts of the signal have their outcome and others not yet."""
    total = len(rig.seeded.account_ids)

    async def some_not_all() -> bool:
        accounts = (await rig.entry(signal_id)).get("accounts", [])
        decided = sum(1 for a in accounts if a["outcome"] not in ("pending", "unknown"))
        assert decided < total or len(accounts) < total, "the fan-out ended before the fault"
        return decided > 0

    await until(some_not_all, 30, f"signal {signal_id} under way", pause_s=0.05)


async def _intents(rig: FaultRig, intent_ids: list[str]) -> dict[str, IntentRecord]:
    assert rig.system.nats is not None
    nc = await nats.connect(rig.system.nats.url)
    found: dict[str, IntentRecord] = {}
    try:
        kv = await nc.jetstream().key_value(subjects.Buckets.INTENTS.name)
        for intent_id in intent_ids:
            try:
                entry = await kv.get(intent_id)
            except KeyNotFoundError:
                continue
            found[intent_id] = msgspec.json.decode(entry.value or b"", type=IntentRecord)
    finally:
        await nc.close()
    return found


async def _ledger_book_equals_the_venue(
    rig: FaultRig,
) -> dict[tuple[int, int], tuple[int, int, int, int]]:
    """The restarted ledger replayed its streams: its book equals the venue's (returned)."""
    await until(rig.ledger_ready, 30, "the restarted ledger replayed its streams")
    venue = await rig.venue_book()
    ledger: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    async def same_book() -> bool:
        ledger.update(await rig.ledger_book())
        return ledger == venue

    try:
        await until(same_book, 20, "the ledger's book equals the venue's")
    except AssertionError:
        diff = {k: (ledger.get(k), venue.get(k)) for k in set(ledger) | set(venue)}
        raise AssertionError(
            {k: v for k, v in diff.items() if v[0] != v[1]}, rig.system.log_dir
        ) from None
    assert {v[0] for v in venue.values()} == {FINAL_POSITION}, venue
    assert len(venue) == len(rig.seeded.account_ids)
    return venue


async def test_ledger_restarts_and_a_graceful_replica_stop_lose_and_double_nothing(
    rig: FaultRig,
) -> None:
    await rig.ready(ordinals=(0, 1))
    await rig.strategy(max_entry_age_s=120, max_exit_age_s=120, rate_limit_per_min=10_000)
    per_replica = [await rig.connected((0,)), await rig.connected((1,))]
    stopping = per_replica.index(max(per_replica))  # the replica working the most logins
    health = (await rig.http.get(rig.system.executor_url(stopping) + "/healthz")).json()
    its_shards = set(health["shards"])
    signal_ids: list[str] = []
    codes: dict[str, int] = {}
    started = time.monotonic()
    for number, (body, price) in enumerate(SIGNALS):
        await rig.set_price(price)
        signal_id = await rig.signal(body)
        signal_ids.append(signal_id)
        await _under_way(rig, signal_id)
        if number == 0:
            codes["executor SIGTERM"] = await asyncio.to_thread(
                stop, rig.system, f"executor-{stopping}", signal.SIGTERM
            )
        elif number == 1:
            codes["ledger SIGKILL"] = await asyncio.to_thread(
                restart, rig.system, "ledger", "phalanx_ledger", signal.SIGKILL
            )
        else:
            codes["ledger SIGTERM"] = await asyncio.to_thread(
                restart, rig.system, "ledger", "phalanx_ledger", signal.SIGTERM
            )
        entry = await rig.outcome(signal_id, timeout_s=60)
        assert {a["outcome"] for a in entry["accounts"]} == {"placed"}, entry["counts"]
    elapsed = time.monotonic() - started

    venue = await _ledger_book_equals_the_venue(rig)

    # -- the venue: every account exactly its orders, no clOrdId twice
    orders: dict[int, list[dict[str, Any]]] = {
        a: [o for o in await rig.orders(a) if o.get("parentId") is None]
        for a in rig.seeded.account_ids
    }
    counts = {a: len(o) for a, o in orders.items()}
    cl_ord_ids = Counter(
        str(o["clOrdId"]) for os_ in orders.values() for o in os_ if o.get("clOrdId")
    )
    assert counts == dict.fromkeys(rig.seeded.account_ids, ORDERS_PER_ACCOUNT), counts
    assert [c for c, n in cl_ord_ids.items() if n > 1] == []
    assert (await rig.violations())["count"] == 0

    # -- the graceful stop: exit 0; intents it had not sent were placed by the other replica
    assert codes == {"ledger SIGKILL": -signal.SIGKILL, "ledger SIGTERM": 0, "executor SIGTERM": 0}
    keys = [ids.intent_id(s, a) for s in signal_ids for a in rig.seeded.account_ids]
    records = await _intents(rig, keys)
    assert {r.state for r in records.values()} == {"accepted"}, Counter(
        r.state for r in records.values()
    )
    assert len(records) == len(keys)
    stopped_suffix = f"-r{stopping}"
    login_of = {a: login for login, accts in rig.accounts_of.items() for a in accts}
    first = [records[ids.intent_id(signal_ids[0], a)] for a in rig.seeded.account_ids]
    # its logins by its shards (not by the owners of the first signal's intents: it may have
    # handed every one of them back before placing any)
    worked_by_stopped = {
        login for login in rig.accounts_of if shard_of(login, rig.system.shards) in its_shards
    }
    taken_over = [
        r
        for r, a in zip(first, rig.seeded.account_ids, strict=True)
        if login_of[a] in worked_by_stopped and not r.owner.endswith(stopped_suffix)
    ]
    assert worked_by_stopped, "the stopped replica worked no login"
    assert taken_over, "the stop came after its part of the fan-out was done"
    print(
        f"measured: 3 signals x {len(rig.seeded.account_ids)} accounts over 2 replicas in "
        f"{elapsed:.1f} s; ledger SIGKILLed and SIGTERMed mid-fill, book = venue on "
        f"{len(venue)} positions; replica {stopping} stopped mid-batch (exit 0): "
        f"{len(taken_over)} intents handed back and placed by the other, "
        f"{sum(counts.values())} orders, 0 duplicates, 0 violations"
    )
