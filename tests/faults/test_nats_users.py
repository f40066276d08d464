"""NATS with one user per service (ADR-0117), against a real nats-server started with the
``authorization`` block of :mod:`phalanx_common.nats_permissions`.

- a client without credentials, or with a wrong password, cannot connect at all (so it can
  neither publish to ``signals.>`` / ``exec.>`` nor read a bucket);
- each service's user declares the topology and does its own work (ingest publishes signals,
  the executor reads tokens and publishes batches, the ledger consumes fills), and is refused
  what belongs to another (ingest cannot publish ``exec.>`` nor read ``tokens``; the ledger
  cannot publish signals nor read ``credentials``);
- the deployments' NATS configurations hold exactly this block.

The whole system trading under these users, with no permission violation in the server's log,
is tests/faults/test_secrets_never_leak.py.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.nats_permissions import SERVICE_ACCESS, authorization_block
from phalanx_testing.servers import ServerProcess, start_nats

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {service: secrets.token_urlsafe(16) for service in SERVICE_ACCESS}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("nats-users") / "nats.conf"
    config.write_text(authorization_block(lambda service: f'"{PASSWORDS[service]}"'))
    running = start_nats(extra_args=["-c", str(config)])
    try:
        yield running
    finally:
        running.stop()


@pytest_asyncio.fixture
async def topology(server: ServerProcess) -> AsyncIterator[None]:
    """Streams and buckets, declared as ingest would at start (its user may)."""
    bus = await Bus.connect(server.url, "ingest", auth=NatsAuth("ingest", PASSWORDS["ingest"]))
    try:
        await bus.ensure_topology()
    finally:
        await bus.close()
    yield


class _Client:
    """A connection as one service's user, collecting the server's permission errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NatsClient | None = None

    async def connect(self, url: str, service: str) -> NatsClient:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            url,
            user=service,
            password=PASSWORDS[service],
            error_cb=on_error,
            allow_reconnect=False,
        )
        return self.nc


@pytest_asyncio.fixture
async def as_service(server: ServerProcess, topology: None) -> AsyncIterator[_Client]:
    client = _Client()
    yield client
    if client.nc is not None:
        await client.nc.close()


async def _refused(coro: object) -> bool:
    try:
        await coro  # type: ignore[misc]
    except (NatsError, TimeoutError):
        return True
    return False


@pytest.mark.parametrize("password", [None, "", "wrong"])
async def test_without_the_right_credentials_nothing_connects(
    server: ServerProcess, password: str | None
) -> None:
    options = {} if password is None else {"user": "ingest", "password": password}
    with pytest.raises((NatsError, OSError, TimeoutError)):
        await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, **options)


async def test_ingest_publishes_signals_and_nothing_of_the_executor(
    server: ServerProcess, as_service: _Client
) -> None:
    nc = await as_service.connect(server.url, "ingest")
    js = nc.jetstream(timeout=1.0)  # a refusal shows as no answer: wait briefly
    stored = await js.publish(subjects.signals_subject("s1"), b"{}", timeout=2)
    assert stored.stream == "SIGNALS"
    assert await _refused(js.publish(subjects.exec_subject(0), b"{}", timeout=1))
    assert await _refused(js.publish(subjects.fills_subject(1), b"{}", timeout=1))
    tokens = await js.key_value(subjects.Buckets.TOKENS.name)  # its info: the topology's
    assert await _refused(tokens.get("any"))
    assert any("permissions violation" in e.lower() for e in as_service.errors), as_service.errors


async def test_the_executor_reads_tokens_and_publishes_batches(
    server: ServerProcess, as_service: _Client
) -> None:
    bus = await Bus.connect(server.url, "auth", auth=NatsAuth("auth", PASSWORDS["auth"]))
    try:
        await (await bus.key_value(subjects.Buckets.TOKENS)).put("l1", b"sealed-token")
        credentials_kv = await bus.key_value(subjects.Buckets.CREDENTIALS)
        await credentials_kv.put("l1", b"sealed-credentials")
    finally:
        await bus.close()
    nc = await as_service.connect(server.url, "executor")
    js = nc.jetstream(timeout=1.0)  # a refusal shows as no answer: wait briefly
    assert (await js.publish(subjects.exec_subject(3), b"{}", timeout=2)).stream == "EXEC"
    tokens = await js.key_value(subjects.Buckets.TOKENS.name)
    assert (await tokens.get("l1")).value == b"sealed-token"
    assert not as_service.errors
    assert await _refused(tokens.put("l1", b"x"))  # only auth writes tokens
    credentials = await js.key_value(subjects.Buckets.CREDENTIALS.name)
    assert await _refused(credentials.get("l1"))  # only auth reads stored credentials
    assert any("permissions violation" in e.lower() for e in as_service.errors), as_service.errors


async def test_the_ledger_consumes_fills_and_publishes_only_reconciliation_results(
    server: ServerProcess, as_service: _Client
) -> None:
    nc = await as_service.connect(server.url, "ledger")
    js = nc.jetstream(timeout=1.0)  # a refusal shows as no answer: wait briefly
    sub = await js.pull_subscribe(
        subjects.FILLS.subjects[0], durable="ledger-test", stream=subjects.FILLS.name
    )
    assert await _refused(sub.fetch(1, timeout=0.5))  # empty stream: a timeout...
    assert not as_service.errors  # ...not a refusal
    # Reconciliation (ADR-0125): fetched fills, drift reports, REDUCING of a drifted account.
    assert (await js.publish(subjects.fills_subject(1), b"{}", timeout=2)).stream == "FILLS"
    drift = await js.publish(subjects.drift_subject(1), b"{}", timeout=2)
    assert drift.stream == "CONTROL"
    states = await js.key_value(subjects.Buckets.TRADING_STATE.name)
    await states.put("account.1", b"{}")
    tokens = await js.key_value(subjects.Buckets.TOKENS.name)
    assert not as_service.errors
    assert await _refused(js.publish(subjects.signals_subject("s1"), b"{}", timeout=1))
    assert await _refused(js.publish(subjects.orders_subject(1), b"{}", timeout=1))
    assert await _refused(js.publish(subjects.CONTROL_KILL, b"{}", timeout=1))
    assert await _refused(tokens.put("l1", b"x"))  # only auth writes tokens
    assert any("permissions violation" in e.lower() for e in as_service.errors), as_service.errors


@pytest.mark.parametrize(
    "path", ["deploy/nats/nats.conf", "deploy/k8s/overlays/dev/nats.yaml"], ids=["compose", "k8s"]
)
def test_the_deployed_configuration_has_these_users(path: str) -> None:
    text = (ROOT / path).read_text()
    block = authorization_block()
    if path.endswith(".yaml"):
        block = "".join(f"    {line}\n" if line else "\n" for line in block.splitlines())
    assert block in text
