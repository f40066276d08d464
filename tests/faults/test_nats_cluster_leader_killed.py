"""A 3-node JetStream cluster loses the SIGNALS stream leader (SIGKILL) in the middle of a burst
of 200 webhooks: every 2xx signal is stored and executes exactly once on every account, and the
services find the surviving nodes by themselves.

Three ``nats-server`` processes on loopback with routes and ``sync_interval: always``; every
stream and bucket at R3 (``PHALANX_STREAM_REPLICAS=3``); every service gets the three URLs
(``PHALANX_NATS_URL`` comma-separated). The SIGNALS leader is first moved to the node ingest is
connected to, so the kill takes the stream's leader and ingest's connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from nats.errors import Error as NatsError
from tests.faults.rig_nats import Rig, Shape, monitor_names, settle_and_check, system_env, until

from phalanx_bench.system import System
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_testing.servers import NatsCluster, start_nats_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# The 200 webhooks; 2 logins x 2 accounts keep the run within the suite's budget.
SHAPE = Shape(logins=2, accounts_per_login=2, signals=200, fault_at=60)


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[NatsCluster]:
    running = await asyncio.to_thread(start_nats_cluster, 3)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)


@pytest_asyncio.fixture
async def system(
    cluster: NatsCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[System]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    (tmp_path / "logs").mkdir()
    running = System(
        nats_url=cluster.url,
        shards=4,
        log_dir=tmp_path / "logs",
        extra_env={
            **system_env(tmp_path / "outbox"),
            "PHALANX_STREAM_REPLICAS": "3",
            # A nak sent while a shard consumer has no leader is lost: the batch comes back
            # after the ack wait, and later intents of its accounts wait behind it (ADR-0100).
            # 5 s instead of 30 s keeps the run short (and redelivers sooner: no easier).
            "PHALANX_EXEC_ACK_WAIT_S": "5",
        },
    )
    try:  # a start that fails half-way still stops what it started
        await asyncio.to_thread(running.start)
        yield running
    finally:
        await asyncio.to_thread(running.stop)


async def _signals_leader(bus: Bus) -> str | None:
    """The SIGNALS stream's leader (None while there is none, or the cluster cannot say)."""
    try:
        info = await bus.js.stream_info(subjects.SIGNALS.name)
    except NatsError:  # a timeout or no responders while the test's own client reconnects
        return None
    return info.cluster.leader if info.cluster is not None else None


async def test_killing_the_signals_leader_mid_burst_loses_and_doubles_nothing(
    cluster: NatsCluster, system: System
) -> None:
    bus = await Bus.connect(cluster.url, "fault-test")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            rig = await Rig.prepare(system, http, SHAPE)
            # the configuration under test: replicated streams and buckets
            for stream in (subjects.SIGNALS.name, f"KV_{subjects.Buckets.INTENTS.name}"):
                info = await bus.js.stream_info(stream)
                assert info.config.num_replicas == 3, stream

            # the node ingest talks to becomes the SIGNALS leader: the kill takes both
            victim = next(
                node.name for node in cluster.nodes if "ingest" in monitor_names([node.monitor_url])
            )

            async def victim_leads() -> bool:
                if await _signals_leader(bus) == victim:
                    return True
                with contextlib.suppress(NatsError):  # asked again until it has moved
                    await bus.nc.request(
                        f"$JS.API.STREAM.LEADER.STEPDOWN.{subjects.SIGNALS.name}",
                        json.dumps({"placement": {"preferred": victim}}).encode(),
                        timeout=5,
                    )
                return False

            await until(victim_leads, 60, f"SIGNALS led by {victim}")
            on_victim = sorted(monitor_names([cluster.node(victim).monitor_url]))
            assert "ingest" in on_victim  # the kill takes the publisher's connection too
            survivors = [n.monitor_url for n in cluster.nodes if n.name != victim]
            measured: dict[str, float | str] = {}

            async def kill_the_leader(rig: Rig) -> None:
                assert await _signals_leader(bus) == victim  # still the leader at the kill
                rig.in_fault = True
                killed = time.monotonic()
                await asyncio.to_thread(cluster.kill, victim)
                rig.fault_staged.set()
                measured["reconnect_s"] = await rig.wait_for_services(survivors)

                async def new_leader() -> bool:
                    leader = await _signals_leader(bus)
                    return leader is not None and leader != victim

                await until(new_leader, 60, "a new SIGNALS leader")
                measured["new_leader_s"] = time.monotonic() - killed
                measured["new_leader"] = str(await _signals_leader(bus))

            burst = await rig.burst(kill_the_leader)
            result = await settle_and_check(rig, burst, cluster.url)
    finally:
        await bus.close()
    during = [status for a in burst.answers for status in a.during_fault]
    print(  # the measured result of this fault (README's Reliability table)
        f"\nNATS cluster, SIGNALS leader {victim} SIGKILLed (connected there: {on_victim}): "
        f"{result}; answered during the fault: {len(during)} {sorted(set(during))}; "
        f"services reconnected in {measured['reconnect_s']:.1f} s; new leader "
        f"{measured['new_leader']} after {measured['new_leader_s']:.1f} s"
    )
