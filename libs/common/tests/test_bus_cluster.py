"""The bus against a real 3-node JetStream cluster on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.errors import DependencyUnavailable
from phalanx_testing.servers import NatsCluster, start_nats_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    running = start_nats_cluster(3)
    try:
        yield running
    finally:
        running.stop()


async def test_ensure_topology_waits_for_jetstream_to_answer_instead_of_failing(
    cluster: NatsCluster,
) -> None:
    # Services declare the topology as they start; a cluster that cannot answer yet (no quorum,
    # or busy creating R3 streams for every service at once) makes requests time out. A start
    # must wait that out, not fail on the first timeout.
    bus = await Bus.connect(cluster.nodes[0].url, "test", api_timeout_s=1.0)
    try:
        cluster.kill("n1")
        cluster.kill("n2")  # n0 alone: no JetStream quorum, requests go unanswered
        declaring = asyncio.ensure_future(bus.ensure_topology(replicas=3))
        await asyncio.sleep(2.5)  # two request timeouts pass meanwhile
        assert not declaring.done() or declaring.exception() is None
        await asyncio.gather(
            asyncio.to_thread(cluster.start_node, "n1"), asyncio.to_thread(cluster.start_node, "n2")
        )
        await asyncio.wait_for(declaring, 60)
        info = await bus.js.stream_info(subjects.SIGNALS.name)
        assert info.config.num_replicas == 3
    finally:
        await bus.close()


async def test_ensure_topology_gives_up_after_its_deadline_naming_nats(
    cluster: NatsCluster,
) -> None:
    bus = await Bus.connect(cluster.nodes[0].url, "test", api_timeout_s=0.3)
    try:
        cluster.kill("n1")
        cluster.kill("n2")
        with pytest.raises(DependencyUnavailable, match="NATS JetStream"):
            await bus.ensure_topology(replicas=3, timeout_s=1.5)
    finally:
        await bus.close()
