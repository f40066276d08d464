"""The planner as a bus consumer: SIGNALS in, per-shard ExecBatch commands out."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from nats.aio.msg import Msg

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.contracts import ContractBook
from phalanx_common.errors import Poison
from phalanx_common.events import (
    AnyEvent,
    ExecBatch,
    IntentExpired,
    IntentSkipped,
    SignalPlanned,
    SignalReceived,
)
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.planner import plan

__all__ = ["Planner"]

log = logging.getLogger(__name__)


class Planner:
    """Consumes signals and publishes deterministic batches (ids from the signal id)."""

    def __init__(
        self,
        *,
        bus: Bus,
        clock: Clock,
        book: ContractBook,
        subscriptions: KvMirror[SubscriptionRecord],
        accounts: KvMirror[AccountRecord],
        shards: int,
        batch_size: int,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._book = book
        self._subscriptions = subscriptions
        self._accounts = accounts
        self._shards = shards
        self._batch_size = batch_size

    async def handle(self, event: AnyEvent, msg: Msg) -> None:
        """Bus handler for one SignalReceived."""
        if not isinstance(event, SignalReceived):
            raise Poison(f"unexpected {type(event).__name__} on a signals subject")
        prefix = f"{event.strategy_id}."
        subs = [s for k, s in self._subscriptions.items().items() if k.startswith(prefix)]
        accounts = {a.account_id: a for a in self._accounts.values()}
        today = dt.datetime.fromtimestamp(self._clock.time_ns() / 1e9, tz=dt.UTC).date()
        now = self._clock.time_ns()
        result = plan(event, subs, accounts, self._book, self._shards, self._batch_size, today, now)
        traceparent = (msg.headers or {}).get("traceparent", "")

        publishes = [
            self._bus.publish(
                subjects.exec_subject(batch.shard),
                ExecBatch(
                    event_id=batch.batch_id,
                    ts_event=event.ts_event,
                    ts_init=now,
                    batch_id=batch.batch_id,
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    shard=batch.shard,
                    intents=batch.intents,
                    traceparent=traceparent,
                ),
                msg_id=batch.batch_id,
            )
            for batch in result.batches
        ]
        publishes += [
            self._bus.publish(
                subjects.orders_subject(skip.account_id),
                IntentSkipped(
                    event_id=ids.new_event_id(),
                    ts_event=now,
                    ts_init=now,
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    account_id=skip.account_id,
                    reason=skip.reason,
                    text=skip.text,
                ),
                msg_id=f"skip-{ids.intent_id(event.signal_id, skip.account_id)}",
            )
            for skip in result.skipped
        ]
        publishes += [
            self._bus.publish(
                subjects.orders_subject(account_id),
                IntentExpired(
                    event_id=ids.new_event_id(),
                    ts_event=now,
                    ts_init=now,
                    intent_id=ids.intent_id(event.signal_id, account_id),
                    signal_id=event.signal_id,
                    strategy_id=event.strategy_id,
                    account_id=account_id,
                    not_after_ns=result.not_after_ns,
                    stage="planning",
                    text=f"planned {(now - result.not_after_ns) / 1e9:.1f} s after its deadline",
                ),
                msg_id=f"expired-{ids.intent_id(event.signal_id, account_id)}",
            )
            for account_id in result.expired
        ]
        await asyncio.gather(*publishes)
        if result.rejected:
            log.warning("signal %s not planned: %s", event.signal_id, result.rejected)
        await self._bus.publish(
            subjects.planned_subject(event.strategy_id),
            SignalPlanned(
                event_id=f"planned-{event.signal_id}",
                ts_event=now,
                ts_init=now,
                signal_id=event.signal_id,
                strategy_id=event.strategy_id,
                intents=result.intent_count,
                batches=len(result.batches),
                skipped=len(result.skipped),
                rejected=result.rejected,
                expired=len(result.expired),
            ),
        )
