"""A replica that stops gracefully hands its unsent intents back before it leaves (ADR-0050).

A whole in-process replica (membership, shard consumers, worker) over real NATS, Redis and the
simulator: its heartbeat must outlive its in-flight batches, or another replica takes the
shards while this one still works them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from nats.js.errors import KeyNotFoundError

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode, encode
from phalanx_common.crypto import key_ring_from_settings, seal_token
from phalanx_common.events import ExecBatch, OrderIntent
from phalanx_common.records import AccountRecord, IntentRecord
from phalanx_executor.service import build_executor
from phalanx_executor.settings import ExecutorSettings
from phalanx_sim import Simulator
from phalanx_testing.sim_tokens import log_in
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

SYMBOL = "MESZ6"


async def test_the_heartbeat_is_deleted_only_after_unsent_intents_are_handed_back(
    nats_url: str, redis_url: str
) -> None:
    async with Simulator(port=0) as sim:
        sim.set_price(SYMBOL, 6000)
        user = sim.create_user("trader", "pw", accounts=2)
        token = await log_in(sim, "trader", user.userId)
        settings = ExecutorSettings(
            nats_url=nats_url,
            redis_url=redis_url,
            tradovate_ws_url=sim.ws_url,
            shards=1,
            executor_port=0,
            # authorize, its sync, the contract lookup and the first intent take the
            # permits; the second intent waits far longer than the test
            login_windows=((4, 30.0),),
            lease_ttl_s=2.0,
            lease_renew_s=0.3,
        )
        bus = await Bus.connect(nats_url, "test")
        await bus.ensure_topology()
        ring = key_ring_from_settings(settings.token_keys, settings.admin_token)
        await (await bus.key_value(subjects.Buckets.TOKENS)).put(
            "trader", encode(seal_token(ring, token))
        )
        accounts = [(int(a["id"]), str(a["name"])) for a in user.accounts]
        accounts_kv = await bus.key_value(subjects.Buckets.ACCOUNTS)
        for account_id, spec in accounts:
            record = AccountRecord(
                account_id=account_id, account_spec=spec, login_id="trader", user_id=user.userId
            )
            await accounts_kv.put(str(account_id), encode(record))

        replica = await build_executor(settings)
        await replica.start()
        intents = tuple(
            OrderIntent(
                intent_id=f"sig1-{account_id}",
                signal_id="sig1",
                strategy_id="strat",
                account_id=account_id,
                account_spec=spec,
                login_id="trader",
                kind="entry",
                action="Buy",
                symbol=SYMBOL,
                quantity=1,
                signal_seq=1,
            )
            for account_id, spec in accounts
        )
        now = LiveClock().time_ns()
        batch = ExecBatch(
            event_id="b1",
            ts_event=now,
            ts_init=now,
            batch_id="b1",
            signal_id="sig1",
            strategy_id="strat",
            shard=0,
            intents=intents,
        )
        intents_kv = await bus.key_value(subjects.Buckets.INTENTS)

        async def state(intent: OrderIntent) -> str:
            try:
                entry = await intents_kv.get(intent.intent_id)
            except KeyNotFoundError:
                return "none"
            return decode(entry.value or b"", IntentRecord).state if entry.value else "none"

        try:
            await bus.publish(subjects.exec_subject(0), batch, msg_id="b1")
            states = await eventually(
                lambda: _two_states(state, intents), 20.0, what="one sent, one waiting"
            )
            assert states is not None
            waiting = intents[states.index("claimed")]

            leases = await bus.key_value(subjects.Buckets.SHARD_LEASES)
            watcher = await leases.watch("replica.0")
            stopping = asyncio.create_task(replica.stop())
            while True:
                update = await watcher.updates(timeout=40.0)  # type: ignore[no-untyped-call]
                if update is not None and update.operation in ("DEL", "PURGE"):
                    break
            # the moment the heartbeat goes, the waiting intent has already been handed back
            assert await state(waiting) == "none"
            await stopping
            await watcher.stop()  # type: ignore[no-untyped-call]
        finally:
            await replica.stop()
            await bus.close()


async def _two_states(
    state: Callable[[OrderIntent], Awaitable[str]], intents: tuple[OrderIntent, ...]
) -> list[str] | None:
    states = [await state(i) for i in intents]
    return states if sorted(states) == ["accepted", "claimed"] else None
