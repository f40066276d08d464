"""A replica that cannot reach NATS or Redis at start-up says which and exits non-zero."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from phalanx_testing.servers import ServerProcess, free_port, start_nats, start_redis

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


def test_a_replica_whose_nats_and_redis_stopped_first_still_exits_cleanly_and_promptly() -> None:
    """`make run`'s Ctrl-C stops every process at once and SIGKILLs what is left after 5 s.

    The replica's graceful stop must not wait out its whole shutdown budget (10 s) on a bus that
    is gone: it used to, and was killed (rc -9) at every Ctrl-C.
    """
    nats = start_nats()
    redis = start_redis()
    env = {
        **os.environ,
        "PHALANX_NATS_URL": nats.url,
        "PHALANX_REDIS_URL": redis.url,
        "PHALANX_EXECUTOR_PORT": "0",
        "PHALANX_SHUTDOWN_BUDGET_S": "10",
        "PHALANX_DEV_MODE": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "phalanx_executor"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until it works its shards
            lines.append(line)
            if "listening on" in line:  # the last step of its start
                break
        else:
            raise AssertionError("the replica never started: " + "".join(lines[-20:]))
        nats.stop()
        redis.stop()
        proc.send_signal(signal.SIGTERM)
        # well inside the budget: 10 s would mean it waited on the missing bus
        try:
            _, rest = proc.communicate(timeout=7)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, rest = proc.communicate()
            raise AssertionError("still stopping after 7 s:\n" + rest[-3000:]) from None
        assert proc.returncode == 0, rest[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        nats.stop()
        redis.stop()


def test_the_exit_message_never_shows_credentials_of_the_nats_url() -> None:
    port = free_port()
    result = _run_executor(
        f"nats://phalanx:hunter2-secret@127.0.0.1:{port}", f"redis://127.0.0.1:{free_port()}/0"
    )
    assert result.returncode == 2
    assert f"cannot reach NATS at nats://***@127.0.0.1:{port}" in result.stderr
    assert "hunter2-secret" not in result.stderr
