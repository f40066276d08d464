"""``python -m phalanx_console`` / ``phalanx-console``: run the console until SIGTERM."""

from __future__ import annotations

import sys

from phalanx_common.lifecycle import run_service_main
from phalanx_common.secret_policy import load_service_settings
from phalanx_console.service import build_console
from phalanx_console.settings import ConsoleSettings

__all__ = ["main"]


def main() -> int:
    """Read ``PHALANX_*`` settings and serve the console."""
    settings = load_service_settings(ConsoleSettings)
    return run_service_main(
        "console", build_console, settings, settings.log_level, settings.shutdown_budget_s
    )


if __name__ == "__main__":
    sys.exit(main())
