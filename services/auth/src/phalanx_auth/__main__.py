"""``python -m phalanx_auth`` / ``phalanx-auth``: run the auth service until SIGTERM."""

from __future__ import annotations

import sys

from phalanx_auth.service import build_auth
from phalanx_auth.settings import AuthSettings
from phalanx_common.lifecycle import run_service_main
from phalanx_common.secret_policy import load_service_settings

__all__ = ["main"]


def main() -> int:
    """Read ``PHALANX_*`` settings and run the service; exit code 2 if NATS is unreachable."""
    settings = load_service_settings(AuthSettings, optional_secrets=("oauth_client_secret",))
    return run_service_main(
        "auth", build_auth, settings, settings.log_level, settings.shutdown_budget_s
    )


if __name__ == "__main__":
    sys.exit(main())
