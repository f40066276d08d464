"""Servers in containers through testcontainers, used when a Docker engine is reachable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["docker_available", "nats_container", "redis_container"]

NATS_IMAGE = "nats:2.12-alpine"
REDIS_IMAGE = "redis:7-alpine"


def docker_available() -> bool:
    """True when ``PHALANX_TEST_DOCKER`` allows it and a Docker engine answers a ping."""
    mode = os.environ.get("PHALANX_TEST_DOCKER", "auto").lower()
    if mode == "never":
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
    except Exception:
        if mode == "always":
            raise
        return False
    return True


@contextmanager
def nats_container() -> Iterator[str]:
    """Run nats-server with JetStream in a container; yield its client URL."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with DockerContainer(NATS_IMAGE).with_command("-js").with_exposed_ports(4222) as c:
        wait_for_logs(c, "Server is ready", timeout=30)
        yield f"nats://{c.get_container_host_ip()}:{c.get_exposed_port(4222)}"


@contextmanager
def redis_container() -> Iterator[str]:
    """Run redis-server in a container; yield its client URL."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    with DockerContainer(REDIS_IMAGE).with_exposed_ports(6379) as c:
        wait_for_logs(c, "Ready to accept connections", timeout=30)
        yield f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0"
