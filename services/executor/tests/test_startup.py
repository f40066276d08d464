"""A replica that cannot reach NATS or Redis at start-up says which and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from phalanx_testing.servers import ServerProcess, free_port

pytestmark = pytest.mark.integration


def _run_executor(nats_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PHALANX_NATS_URL": nats_url,
        "PHALANX_REDIS_URL": redis_url,
        "PHALANX_DEV_MODE": "true",
    }
    return subprocess.run(
        [sys.executable, "-m", "phalanx_executor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unreachable_nats_exits_2_naming_nats() -> None:
    nats_url = f"nats://127.0.0.1:{free_port()}"
    result = _run_executor(nats_url, f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 2
    assert f"cannot reach NATS at {nats_url}" in result.stderr


def test_unreachable_redis_exits_2_naming_redis(nats_server: ServerProcess) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    result = _run_executor(nats_server.url, redis_url)
    assert result.returncode == 2
    assert f"cannot reach Redis at {redis_url}" in result.stderr
