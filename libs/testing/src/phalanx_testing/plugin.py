"""pytest plugin: real ``nats-server`` (JetStream) and ``redis-server`` started by the test run.

Fixtures:
- ``nats_server``: a fresh nats-server per test on a free loopback port with a temporary store
  (a :class:`ServerProcess`, so a test can stop and restart it).
- ``nats_url``: its URL (a container's when a Docker engine is reachable).
- ``redis_server_url``: one redis-server per session; ``redis_url`` flushes it before each test.
- ``fake_clock``: a :class:`FakeClock`.
No fixture ever uses a server that merely happens to be running on the machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from phalanx_testing.clock import FakeClock
from phalanx_testing.containers import docker_available, nats_container, redis_container
from phalanx_testing.servers import ServerProcess, start_nats, start_redis

__all__ = ["fake_clock", "nats_server", "nats_url", "redis_server_url", "redis_url", "use_docker"]


@pytest.fixture(scope="session")
def use_docker() -> bool:
    """Whether servers run in containers (a reachable Docker engine) or as local processes."""
    return docker_available()


@pytest.fixture
def nats_server() -> Iterator[ServerProcess]:
    """A real nats-server with JetStream, just for this test."""
    server = start_nats()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(use_docker: bool, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh JetStream-enabled NATS server for this test."""
    if use_docker:
        with nats_container() as url:
            yield url
        return
    server: ServerProcess = request.getfixturevalue("nats_server")
    yield server.url


@pytest.fixture(scope="session")
def redis_server_url(use_docker: bool) -> Iterator[str]:
    """URL of the session's redis-server (process or container)."""
    if use_docker:
        with redis_container() as url:
            yield url
        return
    server = start_redis()
    try:
        yield server.url + "/0"
    finally:
        server.stop()


@pytest_asyncio.fixture
async def redis_url(redis_server_url: str) -> AsyncIterator[str]:
    """URL of the session's redis-server, flushed before this test."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    yield redis_server_url


@pytest.fixture
def fake_clock() -> FakeClock:
    """A clock that moves only when the test advances it."""
    return FakeClock()
