"""Wait until TCP ports accept connections, then exec a command (for ``make run``'s Procfile).

``python -m phalanx_bench.wait_for 127.0.0.1:4222 127.0.0.1:6379 -- phalanx-executor``
This only orders start-up; honcho remains the process runner.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time


def wait_for(addresses: list[str], timeout_s: float = 60.0) -> None:
    """Block until every ``host:port`` accepts a TCP connection.

    Raises:
        SystemExit: naming the address still closed after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    for address in addresses:
        host, _, port = address.rpartition(":")
        while True:
            try:
                with socket.create_connection((host, int(port)), 0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"wait_for: {address} still closed after {timeout_s}s"
                    ) from None
                time.sleep(0.1)


def main() -> None:
    """Parse ``ADDR... -- CMD ARGS...``, wait, then exec CMD."""
    argv = sys.argv[1:]
    if "--" not in argv:
        raise SystemExit("usage: python -m phalanx_bench.wait_for HOST:PORT... -- COMMAND [ARGS]")
    split = argv.index("--")
    addresses, command = argv[:split], argv[split + 1 :]
    wait_for(addresses)
    path = shutil.which(command[0]) or command[0]
    os.execv(path, command)  # noqa: S606 - replacing this process with the service


if __name__ == "__main__":
    main()
