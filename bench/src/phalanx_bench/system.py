"""Start the whole system as separate processes on free loopback ports (for the benchmark)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from phalanx_bench.seed import Endpoints
from phalanx_testing.servers import ServerProcess, free_port, start_nats, start_redis

__all__ = ["System"]

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a throwaway credential for a local benchmark


def _free_port_run(count: int) -> int:
    """A port ``p`` such that ``p .. p + count - 1`` were all free a moment ago."""
    for _ in range(50):
        base = free_port()
        try:
            for offset in range(count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no run of {count} free ports found")


@dataclass
class System:
    """NATS, Redis, the simulator and every service, each its own process (NATS: a fresh
    server, or the one(s) named by ``nats_url``, which the caller starts and stops)."""

    executors: int = 1
    shards: int = 16
    # The NATS to use: one URL or a cluster's URLs, comma-separated (``PHALANX_NATS_URL``).
    # Empty: start a fresh single server (``nats``), stopped with the rest.
    nats_url: str = ""
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="phalanx-bench-")))
    nats: ServerProcess | None = None
    redis: ServerProcess | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    endpoints: Endpoints = field(default_factory=Endpoints)
    extra_env: dict[str, str] = field(default_factory=dict)
    executor_port: int = 0
    spare_executors: int = 0  # ports kept for replicas that join later (add_executor)
    base_env: dict[str, str] = field(default_factory=dict)
    # More nats-server options (e.g. ["-c", config] with per-service users, ADR-0117).
    nats_args: list[str] = field(default_factory=list)
    # Per process (by name, or "executor" for every replica): variables only it gets, e.g. its
    # own NATS user and password.
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    admin_token: str = ADMIN_TOKEN

    def _spawn(self, name: str, module: str, env: dict[str, str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        own = self.service_env.get(name) or self.service_env.get(name.split("-")[0], {})
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**env, **own},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        self.names.append(name)

    def kill(self, name: str) -> None:
        """SIGKILL one of the processes this system started (a crash, not a shutdown)."""
        proc = self.procs[self.names.index(name)]
        proc.kill()
        proc.wait(timeout=10)

    def dump_tasks(self, prefix: str = "executor-") -> None:
        """Ask the running processes named ``prefix*`` to log their asyncio tasks (SIGUSR2)."""
        for name, proc in zip(self.names, self.procs, strict=True):
            if name.startswith(prefix) and proc.poll() is None:
                proc.send_signal(signal.SIGUSR2)

    def terminate(self, name: str, timeout_s: float = 60) -> int:
        """Stop one process gracefully (SIGTERM) and wait for it; returns its exit code."""
        proc = self.procs[self.names.index(name)]
        proc.terminate()
        return proc.wait(timeout=timeout_s)

    def add_executor(self) -> str:
        """Start one more executor replica (a replica joining); returns its name."""
        ordinal = sum(1 for name in self.names if name.startswith("executor-"))
        if ordinal >= self.executors + self.spare_executors:
            raise RuntimeError("no port kept for another replica (spare_executors)")
        name = f"executor-{ordinal}"
        self._spawn(
            name, "phalanx_executor", {**self.base_env, "PHALANX_REPLICA_ORDINAL": str(ordinal)}
        )
        return name

    def pids(self) -> dict[str, int]:
        """Process id of every service and server this system started, by name."""
        found = {name: proc.pid for name, proc in zip(self.names, self.procs, strict=True)}
        for server in (self.nats, self.redis):
            if server is not None:
                found[f"{server.name}-server"] = server.proc.pid
        return found

    def executor_url(self, ordinal: int) -> str:
        """Base URL of an executor replica's HTTP API."""
        return f"http://127.0.0.1:{self.executor_port + ordinal}"

    def start(self) -> Endpoints:
        """Start everything and wait until every HTTP service answers."""
        if not self.nats_url:
            self.nats = start_nats(extra_args=self.nats_args)
            self.nats_url = self.nats.url
        self.redis = start_redis()
        ports = {name: free_port() for name in ("sim", "auth", "ingest", "ledger")}
        self.executor_port = _free_port_run(self.executors + self.spare_executors)
        base = self.base_env = {
            **os.environ,
            "PHALANX_NATS_URL": self.nats_url,
            "PHALANX_REDIS_URL": self.redis.url + "/0",
            "PHALANX_ADMIN_TOKEN": self.admin_token,
            # A throwaway admin token and the development token key: allowed in dev mode only.
            "PHALANX_DEV_MODE": "true",
            "PHALANX_LOG_LEVEL": "WARNING",
            "PHALANX_SIM_PORT": str(ports["sim"]),
            "PHALANX_AUTH_PORT": str(ports["auth"]),
            "PHALANX_INGEST_PORT": str(ports["ingest"]),
            "PHALANX_LEDGER_PORT": str(ports["ledger"]),
            "PHALANX_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['ingest']}",
            "PHALANX_TRADOVATE_REST_URL": f"http://127.0.0.1:{ports['sim']}/v1",
            "PHALANX_TRADOVATE_WS_URL": f"ws://127.0.0.1:{ports['sim']}/v1/websocket",
            # The consent page; OAuth is on only with a client id and secret too (extra_env).
            "PHALANX_TRADOVATE_OAUTH_URL": f"http://127.0.0.1:{ports['sim']}/oauth",
            "PHALANX_SHARDS": str(self.shards),
            "PHALANX_REPLICAS": str(self.executors),
            "PHALANX_EXECUTOR_PORT": str(self.executor_port),
            # The simulated venue keys its endpoint limits by login (its default), so the bench
            # measures without the egress IP's sync budget: through one real IP, 1,000 logins
            # would need hours to sync (ADR-0056). A scenario may turn it back on (extra_env).
            "PHALANX_SYNC_IP_WINDOWS": "[]",
            **self.extra_env,
        }
        self._spawn("sim", "phalanx_sim", base)
        self.endpoints = Endpoints(
            sim=f"http://127.0.0.1:{ports['sim']}",
            auth=f"http://127.0.0.1:{ports['auth']}",
            ingest=f"http://127.0.0.1:{ports['ingest']}",
            ledger=f"http://127.0.0.1:{ports['ledger']}",
            admin_token=self.admin_token,
        )
        self._wait_http(self.endpoints.sim + "/admin/stats")
        self._spawn("auth", "phalanx_auth", base)
        self._spawn("ingest", "phalanx_ingest", base)
        self._spawn("ledger", "phalanx_ledger", base)
        for ordinal in range(self.executors):
            self._spawn(
                f"executor-{ordinal}",
                "phalanx_executor",
                {**base, "PHALANX_REPLICA_ORDINAL": str(ordinal)},
            )
        self._wait_http(self.endpoints.auth + "/docs")
        self._wait_http(self.endpoints.ingest + "/docs")
        self._wait_http(self.endpoints.ledger + "/healthz")
        return self.endpoints

    def _wait_http(self, url: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"a service exited with {proc.returncode}; logs in {self.log_dir}"
                    )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not answer within {timeout_s}s; logs in {self.log_dir}")

    def stop(self) -> None:
        """Stop every process this system started (by its own handle), then the servers."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for server in (self.redis, self.nats):
            if server is not None:
                server.stop()
        if os.environ.get("PHALANX_BENCH_KEEP_LOGS") != "1":
            shutil.rmtree(self.log_dir, ignore_errors=True)
