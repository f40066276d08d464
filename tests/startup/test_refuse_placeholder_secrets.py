"""Every service's entry point refuses placeholder secrets before it connects (ADR-0085).

The processes are the real entry points (``python -m phalanx_<service>``). NATS points at a port
nobody listens on: without the refusal they would exit 2 "cannot reach NATS" instead.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from phalanx_testing.servers import free_port

SERVICES = ("phalanx_ingest", "phalanx_auth", "phalanx_executor", "phalanx_ledger")

# The values the prod overlay used to ship from the base Secret.
PLACEHOLDERS = {
    "PHALANX_ADMIN_TOKEN": "REPLACE-ME-admin-token",
    "PHALANX_TOKEN_KEYS": "REPLACE-ME-key-id:base64-of-32-bytes",
    "PHALANX_OAUTH_CLIENT_SECRET": "REPLACE-ME-oauth-client-secret",
}


def _run(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PHALANX_")}
    port = free_port()
    base.update(
        {
            "PHALANX_NATS_URL": f"nats://127.0.0.1:{port}",
            "PHALANX_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        }
    )
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("module", SERVICES)
def test_placeholder_secrets_stop_the_service_naming_the_variables(module: str) -> None:
    result = _run(module, PLACEHOLDERS)
    assert result.returncode == 1, result.stderr
    assert "refusing to start" in result.stderr
    assert "PHALANX_ADMIN_TOKEN" in result.stderr
    assert "PHALANX_TOKEN_KEYS" in result.stderr
    assert "cannot reach NATS" not in result.stderr
    assert "REPLACE-ME-admin-token" not in result.stderr


def test_auth_refuses_a_placeholder_oauth_secret_too() -> None:
    result = _run(
        "phalanx_auth",
        {
            "PHALANX_ADMIN_TOKEN": "q7Jx0fS1mBv3kR9wL2pZ8tYc4nH6aE5u",
            "PHALANX_TOKEN_KEYS": "k1:1WfB0Fo0mV4l3qJYc9b3m2lR8e3XkS8mYy0d6Yb9v3M=",
            "PHALANX_OAUTH_CLIENT_SECRET": PLACEHOLDERS["PHALANX_OAUTH_CLIENT_SECRET"],
        },
    )
    assert result.returncode == 1, result.stderr
    assert "PHALANX_OAUTH_CLIENT_SECRET" in result.stderr
    assert "PHALANX_ADMIN_TOKEN" not in result.stderr


def test_dev_mode_lets_the_service_go_on_to_connect() -> None:
    result = _run("phalanx_ledger", {"PHALANX_DEV_MODE": "true"})
    assert result.returncode == 2, result.stderr
    assert "cannot reach NATS" in result.stderr
