"""``python -m phalanx_ledger`` / ``phalanx-ledger``: run the ledger service until SIGTERM."""

from __future__ import annotations

import sys

from phalanx_common.lifecycle import run_service_main
from phalanx_common.secret_policy import load_service_settings
from phalanx_ledger.service import build_ledger
from phalanx_ledger.settings import LedgerSettings

__all__ = ["main"]


def main() -> int:
    """Read ``PHALANX_*`` settings and run the service; exit code 2 if NATS is unreachable."""
    settings = load_service_settings(LedgerSettings)
    return run_service_main(
        "ledger", build_ledger, settings, settings.log_level, settings.shutdown_budget_s
    )


if __name__ == "__main__":
    sys.exit(main())
