"""The whole system in one event loop: simulator, auth, ingest, executor and ledger, talking
through real NATS and Redis. Used by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_bench.seed import Endpoints
from phalanx_executor.service import ExecutorService, build_executor
from phalanx_executor.settings import ExecutorSettings
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_testing.servers import free_port

ADMIN = "e2e-admin-token"

__all__ = ["OAUTH_CLIENT", "RunningSystem", "running_system"]

OAUTH_CLIENT = ("phalanx-inprocess", "inprocess-oauth-secret")
"""The OAuth application auth uses with ``running_system(oauth=True)`` (id, secret)."""


@dataclass
class RunningSystem:
    """Handles on every running part."""

    endpoints: Endpoints
    sim: Simulator
    auth: AuthService
    ingest: IngestService
    executor: ExecutorService
    ledger: LedgerService
    nats_url: str
    executors: list[ExecutorService]


@asynccontextmanager
async def running_system(
    nats_url: str,
    redis_url: str,
    shards: int = 4,
    executors: int = 1,
    sim_settings: dict[str, Any] | None = None,
    executor_settings: dict[str, Any] | None = None,
    oauth: bool = False,
) -> AsyncIterator[RunningSystem]:
    """Start everything on free ports (``executors`` replicas); stop it all on exit.

    ``oauth``: auth offers OAuth consent at the simulator's pages (client ``OAUTH_CLIENT``).
    """
    sim = Simulator(SimSettings(**{"sim_port": 0, **(sim_settings or {})}))
    await sim.start()
    common: dict[str, Any] = {"nats_url": nats_url, "redis_url": redis_url, "admin_token": ADMIN}
    ingest_port = free_port()
    oauth_settings: dict[str, Any] = (
        {
            "tradovate_oauth_url": sim.url + "/oauth",
            "oauth_client_id": OAUTH_CLIENT[0],
            "oauth_client_secret": OAUTH_CLIENT[1],
        }
        if oauth
        else {}
    )
    auth = await build_auth(
        AuthSettings(**common, auth_port=0, tradovate_rest_url=sim.url + "/v1", **oauth_settings)
    )
    ingest = await build_ingest(
        IngestSettings(
            **common, ingest_port=ingest_port, public_base_url=f"http://127.0.0.1:{ingest_port}"
        )
    )
    ledger = await build_ledger(
        LedgerSettings(**common, ledger_port=0, tradovate_rest_url=sim.url + "/v1")
    )
    replicas = [
        await build_executor(
            ExecutorSettings(
                **common,
                tradovate_ws_url=sim.ws_url,
                shards=shards,
                executor_port=0,
                replica_ordinal=ordinal,
                replicas=executors,
                **(executor_settings or {}),
            )
        )
        for ordinal in range(executors)
    ]
    executor = replicas[0]
    started: list[AuthService | IngestService | LedgerService | ExecutorService] = []
    try:
        services: list[AuthService | IngestService | LedgerService | ExecutorService] = [
            auth,
            ingest,
            ledger,
            *replicas,
        ]
        for service in services:
            await service.start()
            started.append(service)
        if oauth:
            sim.register_oauth_client(*OAUTH_CLIENT, [f"{auth.url}/oauth/callback"])
        yield RunningSystem(
            endpoints=Endpoints(
                sim=sim.url, auth=auth.url, ingest=ingest.url, ledger=ledger.url, admin_token=ADMIN
            ),
            sim=sim,
            auth=auth,
            ingest=ingest,
            executor=executor,
            ledger=ledger,
            nats_url=nats_url,
            executors=replicas,
        )
    finally:
        for service in reversed(started):
            await service.stop()
        await sim.stop()
