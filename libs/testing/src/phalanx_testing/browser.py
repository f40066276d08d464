"""Debian's chromium for the browser tests (Playwright), installed on demand or skipped.

One place for what the account page's test and the console's journeys each launched by hand:
where chromium is (``PHALANX_CHROMIUM``), its headless flags, the installer the CI uses when it
is missing, and the ``browser`` fixture (import it into a test module to use it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

__all__ = ["ARGS", "CHROMIUM", "browser", "chromium"]

CHROMIUM = os.environ.get("PHALANX_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALLER = Path(__file__).resolve().parents[4] / ".ci" / "install-browser.sh"


def chromium() -> str:
    """The chromium executable; installed by the CI's script if missing, else the test skips."""
    if not Path(CHROMIUM).exists() and INSTALLER.exists() and shutil.which("bash"):
        subprocess.run(["bash", str(INSTALLER)], check=False, timeout=600)
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"chromium is not at {CHROMIUM} and {INSTALLER.name} could not install it "
            "(needs root or passwordless sudo and apt-get)"
        )
    return CHROMIUM


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless chromium, closed after the test."""
    executable = chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()
