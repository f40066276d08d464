"""The whole system as processes, set up as in production for the attack tests (ADR-0115..0119).

- production mode (``PHALANX_DEV_MODE=false``) with real-looking random secrets: an admin token,
  a token key ring, an OAuth client secret;
- NATS with one user per service (:mod:`phalanx_common.nats_permissions`) and the server's log
  kept, plus an ``audit`` user allowed everything, for the test to read every stream and bucket;
- traces exported to the test's OTLP receiver;
- every process at log level DEBUG (the most it can write).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from phalanx_bench.seed import SeededStrategy
from phalanx_bench.system import System
from phalanx_common.nats_permissions import SERVICE_ACCESS, authorization_block
from phalanx_testing.otlp import OtlpReceiver

__all__ = ["AUDIT_USER", "SecureRig", "secure_system"]

AUDIT_USER = "audit"
OAUTH_CLIENT_ID = "phalanx-attack-tests"


@dataclass
class SecureRig:
    """A running :class:`System` and what the tests need to attack and audit it."""

    system: System
    receiver: OtlpReceiver
    admin_token: str
    token_keys: str
    oauth_client_secret: str
    nats_passwords: dict[str, str]
    audit_password: str
    nats_log: Path
    found_secrets: dict[str, str] = field(default_factory=dict)  # more, learnt during a test
    seeded: SeededStrategy | None = None  # what a test seeded, for the next tests to share

    @property
    def admin(self) -> dict[str, str]:
        """The admin credential as request headers."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    def secrets(self) -> dict[str, str]:
        """Every secret by a name that says what it is (never put the values in a message)."""
        named = {
            "admin token": self.admin_token,
            "token keys": self.token_keys,
            "OAuth client secret": self.oauth_client_secret,
            "NATS audit password": self.audit_password,
            **{f"NATS password of {s}": p for s, p in self.nats_passwords.items()},
            **self.found_secrets,
        }
        for entry in self.token_keys.split(","):
            key_id, _, b64 = entry.partition(":")
            named[f"token key {key_id}"] = b64
        return named

    async def audit_client(self) -> NatsClient:
        """A NATS connection as the audit user (allowed everything)."""
        assert self.system.nats is not None
        return await nats.connect(
            self.system.nats.url, user=AUDIT_USER, password=self.audit_password
        )


def _token_keys() -> str:
    return ",".join(
        f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in ("k2", "k1")
    )


@contextmanager
def secure_system(
    receiver: OtlpReceiver,
    executors: int = 1,
    shards: int = 4,
    extra_env: dict[str, str] | None = None,
) -> Iterator[SecureRig]:
    """Start the secured system; stop every process it started on exit.

    ``extra_env``: more variables for every process (e.g. shorter HTTP timeouts).
    """
    workdir = Path(tempfile.mkdtemp(prefix="phalanx-sec-"))
    passwords = {service: secrets.token_urlsafe(24) for service in SERVICE_ACCESS}
    audit_password = secrets.token_urlsafe(24)
    config = workdir / "nats.conf"
    config.write_text(
        authorization_block(
            lambda service: f'"{passwords[service]}"',
            extra_users=[f'{{user: {AUDIT_USER}, password: "{audit_password}"}}'],
        )
    )
    nats_log = workdir / "nats-server.log"
    admin_token = secrets.token_urlsafe(32)
    token_keys = _token_keys()
    oauth_secret = secrets.token_urlsafe(24)
    system = System(
        executors=executors,
        shards=shards,
        log_dir=workdir / "logs",
        admin_token=admin_token,
        nats_args=["-c", str(config), "-l", str(nats_log)],
        service_env={
            service: {"PHALANX_NATS_USER": service, "PHALANX_NATS_PASSWORD": password}
            for service, password in passwords.items()
        },
        extra_env={
            "PHALANX_DEV_MODE": "false",
            "PHALANX_TOKEN_KEYS": token_keys,
            "PHALANX_LOG_LEVEL": "DEBUG",
            "PHALANX_OAUTH_CLIENT_ID": OAUTH_CLIENT_ID,
            "PHALANX_OAUTH_CLIENT_SECRET": oauth_secret,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            **(extra_env or {}),
        },
    )
    system.log_dir.mkdir(parents=True, exist_ok=True)
    rig = SecureRig(
        system=system,
        receiver=receiver,
        admin_token=admin_token,
        token_keys=token_keys,
        oauth_client_secret=oauth_secret,
        nats_passwords=passwords,
        audit_password=audit_password,
        nats_log=nats_log,
    )
    try:
        system.start()
        yield rig
    finally:
        system.stop()
        if os.environ.get("PHALANX_BENCH_KEEP_LOGS") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
