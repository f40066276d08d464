"""``phalanx-bench-webhook``: accepted-webhook latency of a real ingest process.

Starts a nats-server and one ``phalanx_ingest`` process (with its durable outbox, as deployed) on
free loopback ports, creates a strategy through the admin API, then posts distinct valid signals
open-loop at ``--rate`` requests per second for ``--duration`` seconds (each request is started
at its scheduled time, whether or not earlier ones have been answered) and prints JSON: status
counts and latency percentiles of the 2xx answers, measured from the scheduled send time (so a
client or server that falls behind shows up as latency). The target is p99 under 25 ms at 500
requests/s (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from phalanx_bench.proc_meter import ProcMeter, cpu_delta
from phalanx_testing.servers import free_port, start_nats

__all__ = ["main", "run_webhook_bench"]

ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 - a throwaway credential for a local benchmark


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"ingest exited with {proc.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


class _Connection:
    """A minimal keep-alive HTTP/1.1 client connection (httpx costs more CPU per request than
    the service under test, which would measure the client rather than ingest)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, host: str, path: str, body: bytes) -> int:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def _load(
    port: int, hook: str, rate: float, duration_s: float, meter: ProcMeter | None = None
) -> dict[str, Any]:
    total = int(rate * duration_s)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    host = f"127.0.0.1:{port}"
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))

    async def post(body: bytes) -> int:
        connection = await pool.get()
        try:
            status = await connection.post(host, hook, body)
        except BaseException:
            connection.writer.close()
            pool.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
            raise
        pool.put_nowait(connection)
        return status

    # Warm the connections and the code paths; not measured.
    await asyncio.gather(
        *(post(b'{"ticker": "MNQ1!", "action": "buy", "id": "w%d"}' % n) for n in range(200))
    )
    cpu_before = meter.cpu() if meter is not None else {}
    start = time.perf_counter() + 0.05

    async def one(n: int) -> None:
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = b'{"ticker": "MNQ1!", "action": "buy", "quantity": 1, "id": "b%d"}' % n
        try:
            status = await post(body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            statuses[type(exc).__name__] += 1
            return
        statuses[str(status)] += 1
        if 200 <= status < 300:
            latencies.append((time.perf_counter() - scheduled) * 1000)

    await asyncio.gather(*(one(n) for n in range(total)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    latencies.sort()
    return {
        "rate_per_s": rate,
        "duration_s": duration_s,
        "sent": total,
        "achieved_rate_per_s": round(total / elapsed, 1),
        "statuses": dict(statuses),
        "accepted_latency_ms": {
            "p50": round(_percentile(latencies, 0.50), 2),
            "p90": round(_percentile(latencies, 0.90), 2),
            "p99": round(_percentile(latencies, 0.99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "target": "p99 < 25 ms at 500/s",
        "cpu_s": cpu_delta(cpu_before, meter.cpu()) if meter is not None else {},
    }


async def _drive(
    base_url: str,
    proc: subprocess.Popen[bytes],
    rate: float,
    duration_s: float,
    meter: ProcMeter | None = None,
) -> dict[str, Any]:
    await _wait_http(base_url + "/healthz", proc)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        created = (
            await client.post(
                "/admin/strategies",
                json={"name": "bench"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        ).json()
    hook = f"/webhooks/{created['strategy_id']}/{created['secret']}"
    return await _load(int(base_url.rsplit(":", 1)[1]), hook, rate, duration_s, meter)


def run_webhook_bench(rate: float, duration_s: float) -> dict[str, Any]:
    """Start NATS and ingest, drive the webhook, stop them, and return the report."""
    nats = start_nats()
    workdir = Path(tempfile.mkdtemp(prefix="phalanx-bench-webhook-"))
    port = free_port()
    env = {
        **os.environ,
        "PHALANX_NATS_URL": nats.url,
        "PHALANX_INGEST_PORT": str(port),
        "PHALANX_ADMIN_TOKEN": ADMIN_TOKEN,
        "PHALANX_DEV_MODE": "true",  # a throwaway admin token: development only
        "PHALANX_LOG_LEVEL": "WARNING",
        "PHALANX_INGEST_OUTBOX_DIR": str(workdir / "outbox"),
        "PHALANX_WEBHOOK_RATE_PER_MIN": "0",
        "PHALANX_SIGNAL_LOG_SIZE": "200",
    }
    log = (workdir / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "phalanx_ingest"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        meter = ProcMeter({"ingest": proc.pid, "nats-server": nats.proc.pid})
        return asyncio.run(_drive(base_url, proc, rate, duration_s, meter))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        nats.stop()


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: print the JSON report (and write it with ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    report = run_webhook_bench(args.rate, args.duration)
    text = json.dumps(report, indent=2)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
