"""``python -m phalanx_ingest`` / ``phalanx-ingest``: run the ingest service until SIGTERM."""

from __future__ import annotations

import sys

from phalanx_common.lifecycle import run_service_main
from phalanx_common.secret_policy import load_service_settings
from phalanx_ingest.service import build_ingest
from phalanx_ingest.settings import IngestSettings

__all__ = ["main"]


def main() -> int:
    """Read ``PHALANX_*`` settings and run the service; exit code 2 if NATS is unreachable."""
    settings = load_service_settings(IngestSettings)
    return run_service_main(
        "ingest", build_ingest, settings, settings.log_level, settings.shutdown_budget_s
    )


if __name__ == "__main__":
    sys.exit(main())
