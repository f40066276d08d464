"""``phalanx-executor``: run one executor replica."""

from __future__ import annotations

import sys

from phalanx_common.lifecycle import run_service_main
from phalanx_common.secret_policy import load_service_settings
from phalanx_executor.service import build_executor
from phalanx_executor.settings import ExecutorSettings


def main() -> None:
    """Run until SIGTERM/SIGINT; exit 2 when NATS or Redis is unreachable at start-up."""
    settings = load_service_settings(ExecutorSettings)
    sys.exit(
        run_service_main(
            "executor",
            build_executor,
            settings,
            settings.log_level,
            settings.shutdown_budget_s,
            event_loop=settings.event_loop,
        )
    )


if __name__ == "__main__":
    main()
