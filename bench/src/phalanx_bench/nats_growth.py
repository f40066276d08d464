"""What nats-server keeps per intent: drive the executor's per-intent JetStream work, sample
the server's memory.

``python -m phalanx_bench.nats_growth --intents 50000`` starts its own nats-server (JetStream,
monitoring and profiling ports on loopback), creates the services' topology
(:meth:`Bus.ensure_topology`) and then, per signal and per intent, does what ingest, the planner
and a worker do on the bus for an accepted intent, with the executor's own classes where they
exist:

- per signal: the ``SignalReceived`` publish (SIGNALS), the ``ExecBatch`` publish (EXEC), its
  fetch and ack (EXEC is a work queue), the planner's ``SignalPlanned`` verdict (ORDERS);
- per intent: its account queue entry (:class:`AccountOrder`), the claim create and its move to
  ``accepted`` (:class:`IntentStore`), the ``OrderAccepted`` publish (ORDERS), one fill
  (FILLS), leaving the account queue.

``--parts`` keeps only some of these, to attribute growth. Every ``--sample-every`` intents it
records the server's resident memory (``/proc/<pid>/status`` VmRSS), its Go heap after a forced
collection (``/debug/pprof/heap?gc=1``: ``HeapAlloc``) and, per stream, messages and subjects
(``/jsz``), and once more after ``--idle-s`` without traffic. The report gives the growth per
intent between the first sample after warm-up and the last while running. ``--intent-ttl-s``
overrides the ``intents`` bucket's TTL (to see a bounded bucket without waiting days).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.events import ExecBatch, FillReceived, OrderIntent, Signal, SignalPlanned
from phalanx_common.events import SignalReceived as Received
from phalanx_common.intent_events import order_accepted
from phalanx_executor.account_order import AccountOrder
from phalanx_executor.intents import IntentStore
from phalanx_testing.servers import ServerProcess, free_port, start_nats

__all__ = ["Sample", "main", "measure"]

PARTS = ("signals", "exec", "intents", "order", "outcomes", "fills")
_STRATEGY = "growth"
_HEAP_ALLOC = re.compile(r"^# HeapAlloc = (\d+)$", re.MULTILINE)


@dataclass
class Sample:
    """The server's memory after ``intents`` intents."""

    intents: int
    rss_kib: int
    heap_alloc: int
    streams: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (msgs, subjects)


@dataclass
class _Server:
    process: ServerProcess
    monitor: int
    profile: int

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def heap_profile(self) -> str:
        """The Go heap profile in text, after a forced collection."""
        url = f"http://127.0.0.1:{self.profile}/debug/pprof/heap?gc=1&debug=1"
        with urllib.request.urlopen(url, timeout=30) as reply:
            return str(reply.read().decode())

    def heap_alloc(self) -> int:
        found = _HEAP_ALLOC.search(self.heap_profile())
        return int(found.group(1)) if found else 0

    def streams(self) -> dict[str, tuple[int, int]]:
        url = f"http://127.0.0.1:{self.monitor}/jsz?streams=true"
        with urllib.request.urlopen(url, timeout=30) as reply:
            jsz = json.loads(reply.read())
        out: dict[str, tuple[int, int]] = {}
        for account in jsz.get("account_details", []):
            for stream in account.get("stream_detail", []):
                state = stream["state"]
                out[stream["name"]] = (state["messages"], state.get("num_subjects", 0))
        return out

    def sample(self, intents: int) -> Sample:
        heap = self.heap_alloc()  # first: it collects garbage, so the RSS read follows it
        return Sample(intents, self.rss_kib(), heap, self.streams())


def _start_server() -> _Server:
    monitor, profile = free_port(), free_port()
    process = start_nats(extra_args=["-m", str(monitor), "--profile", str(profile)])
    return _Server(process, monitor, profile)


def _intent(signal: int, account: int, now_ns: int) -> OrderIntent:
    return OrderIntent(
        intent_id=f"sig{signal:08d}-{account}",
        signal_id=f"sig{signal:08d}",
        strategy_id=_STRATEGY,
        account_id=account,
        account_spec=f"DEMO{account}",
        login_id=f"login{account // 5}",
        kind="entry",
        action="Buy",
        symbol="MNQZ6",
        quantity=1,
        take_profit=Decimal("21000.25"),
        stop_loss=Decimal("20900.75"),
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        not_after_ns=now_ns + 60 * 10**9,
        signal_seq=signal + 1,
    )


@dataclass
class _Driver:
    bus: Bus
    parts: frozenset[str]
    store: IntentStore
    order: AccountOrder
    fills: int = 0

    async def signal(self, number: int, accounts: list[int]) -> None:
        """Everything the bus sees for one signal and its intents."""
        now = time.time_ns()
        intents = [_intent(number, account, now) for account in accounts]
        signal_id = intents[0].signal_id
        if "signals" in self.parts:
            received = Received(
                event_id=signal_id,
                ts_event=now,
                ts_init=now,
                signal_id=signal_id,
                strategy_id=_STRATEGY,
                signal=Signal(ticker="MNQ1!", action="buy", quantity=Decimal(1)),
                not_after_ns=now + 60 * 10**9,
                contract="MNQZ6",
                trace_id="a" * 32,
            )
            await self.bus.publish(subjects.signals_subject(_STRATEGY), received)
        if "exec" in self.parts:
            batch = ExecBatch(
                event_id=f"{signal_id}-b0",
                ts_event=now,
                ts_init=now,
                batch_id=f"{signal_id}-b0",
                signal_id=signal_id,
                strategy_id=_STRATEGY,
                shard=number % 4,
                intents=tuple(intents),
            )
            await self.bus.publish(subjects.exec_subject(batch.shard), batch)
        await asyncio.gather(*(self.intent(i) for i in intents))
        if "signals" in self.parts:
            planned = SignalPlanned(
                event_id=f"planned-{signal_id}",
                ts_event=now,
                ts_init=now,
                signal_id=signal_id,
                strategy_id=_STRATEGY,
                intents=len(intents),
                batches=1,
            )
            await self.bus.publish(subjects.planned_subject(_STRATEGY), planned)

    async def intent(self, intent: OrderIntent) -> None:
        """A worker's bus work for one accepted intent."""
        if "order" in self.parts:
            await self.order.enter(intent)
            await self.order.enter_and_ahead(intent)
        if "intents" in self.parts:
            claim = await self.store.claim(intent.intent_id, time.time_ns())
            await self.store.move(claim, "accepted", order_id=1)
        now = time.time_ns()
        if "outcomes" in self.parts:
            accepted = order_accepted(intent, now, order_id=1, legs=(2, 3), sent_ns=now)
            subject = subjects.orders_subject(intent.account_id)
            await self.bus.publish(subject, accepted, msg_id=f"accepted-{intent.intent_id}")
        if "fills" in self.parts:
            self.fills += 1
            fill = FillReceived(
                event_id=f"fill-{self.fills}",
                ts_event=now,
                ts_init=now,
                fill_id=self.fills,
                order_id=1,
                account_id=intent.account_id,
                contract_id=1,
                symbol=intent.symbol,
                action="Buy",
                qty=1,
                price=Decimal("20950.25"),
                venue_timestamp="2026-11-30T17:00:00.000Z",
            )
            await self.bus.publish(subjects.fills_subject(intent.account_id), fill)
        if "order" in self.parts:
            await self.order.leave(intent)


async def _drain_exec(bus: Bus, stop: asyncio.Event) -> None:
    """Fetch and ack EXEC's batches, as the shard workers do (a work queue forgets them)."""
    await bus.js.add_consumer("EXEC", ConsumerConfig(durable_name="growth", ack_wait=30))
    sub = await bus.js.pull_subscribe_bind(durable="growth", stream="EXEC")
    while not stop.is_set():
        try:
            msgs = await sub.fetch(50, timeout=0.5)
        except (TimeoutError, NatsTimeoutError):
            continue
        for msg in msgs:
            await msg.ack()
    await sub.unsubscribe()


async def measure(
    intents: int,
    accounts: int = 100,
    per_signal: int = 5,
    sample_every: int = 5000,
    parts: frozenset[str] = frozenset(PARTS),
    intent_ttl_s: float | None = None,
    profile_to: str = "",
    idle_s: float = 15.0,
) -> list[Sample]:
    """Drive ``intents`` intents through a fresh nats-server; the samples taken on the way."""
    server = _start_server()
    try:
        bus = await Bus.connect(server.process.url, "nats-growth", api_timeout_s=30.0)
        if intent_ttl_s is not None:
            bucket = dataclasses.replace(subjects.Buckets.INTENTS, ttl_s=intent_ttl_s)
            await bus.key_value(bucket)  # created first: ensure_topology binds it as it is
        await bus.ensure_topology()
        claims = await bus.key_value(subjects.Buckets.INTENTS)
        queues = await bus.key_value(subjects.Buckets.ACCOUNT_ORDER)
        driver = _Driver(
            bus, parts, IntentStore(claims, "growth"), AccountOrder(queues, claims=claims)
        )
        stop = asyncio.Event()
        drain = asyncio.create_task(_drain_exec(bus, stop)) if "exec" in parts else None
        samples = [server.sample(0)]
        concurrent = max(1, accounts // per_signal)  # signals at once: no account twice
        signals = intents // per_signal
        for first in range(0, signals, concurrent):
            numbers = range(first, min(signals, first + concurrent))
            await asyncio.gather(
                *(
                    driver.signal(n, [(n % concurrent) * per_signal + k for k in range(per_signal)])
                    for n in numbers
                )
            )
            done = (numbers[-1] + 1) * per_signal
            if done // sample_every != (done - len(numbers) * per_signal) // sample_every:
                samples.append(server.sample(done))
        stop.set()
        if drain is not None:
            await drain
        await asyncio.sleep(idle_s)  # the stores' caches of recent blocks expire meanwhile
        samples.append(server.sample(samples[-1].intents))
        if profile_to:
            await asyncio.to_thread(Path(profile_to).write_text, server.heap_profile())
        await bus.close()
        return samples
    finally:
        server.process.stop()


def _report(samples: list[Sample], warm_up: int) -> str:
    """The table of samples and the growth per intent while running (the last sample, taken
    after the idle pause, is shown but not used: its caches are cold, the others' warm)."""
    lines = ["intents  rss_MiB  heap_MiB  " + "  ".join(sorted(samples[-1].streams))]
    for n, s in enumerate(samples):
        counts = "  ".join(f"{m}/{k}" for _, (m, k) in sorted(s.streams.items()))
        idle = " (idle)" if n == len(samples) - 1 and n > 1 else ""
        lines.append(
            f"{s.intents:7d}  {s.rss_kib / 1024:7.1f}  {s.heap_alloc / 2**20:8.1f}  {counts}{idle}"
        )
    running = samples[:-1] if len(samples) > 2 else samples
    base = next((s for s in running if s.intents >= warm_up), running[0])
    last = running[-1]
    span = last.intents - base.intents
    if span > 0:
        rss = (last.rss_kib - base.rss_kib) * 1024 / span
        heap = (last.heap_alloc - base.heap_alloc) / span
        lines.append(
            f"from {base.intents} to {last.intents} intents: RSS {rss:+.0f} B/intent, "
            f"Go heap after GC {heap:+.0f} B/intent"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m phalanx_bench.nats_growth``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intents", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--per-signal", type=int, default=5)
    parser.add_argument("--sample-every", type=int, default=5_000)
    parser.add_argument("--warm-up", type=int, default=5_000, help="intents before the base")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--intent-ttl-s", type=float, default=None)
    parser.add_argument("--json", default="", help="also write the samples here")
    parser.add_argument("--heap-profile", default="", help="write the last heap profile here")
    parser.add_argument(
        "--idle-s", type=float, default=15.0, help="pause before the last sample (caches expire)"
    )
    args = parser.parse_args(argv)
    parts = frozenset(p for p in args.parts.split(",") if p)
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    samples = asyncio.run(
        measure(
            args.intents,
            args.accounts,
            args.per_signal,
            args.sample_every,
            parts,
            args.intent_ttl_s,
            args.heap_profile,
            args.idle_s,
        )
    )
    print(_report(samples, args.warm_up))
    if args.json:
        Path(args.json).write_text(json.dumps([dataclasses.asdict(s) for s in samples], indent=1))


if __name__ == "__main__":
    main()
