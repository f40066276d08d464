"""What the console's browser journeys share: the console over a running system, screenshots,
and a page signed in as one of its two users (admin or viewer), at desktop or phone width."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize

from phalanx_bench.inprocess import RunningSystem
from phalanx_console.passwords import hash_password
from phalanx_console.service import ConsoleService, build_console
from phalanx_console.settings import ConsoleSettings

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("PHALANX_SCREENSHOTS_DIR", ROOT / "screenshots" / "console"))
ADMIN_PW = "journey-admin-pw"
VIEWER_PW = "journey-viewer-pw"
TRACES = "https://grafana.example/explore?traceId={trace_id}"
PASSWORDS = {"admin": ADMIN_PW, "viewer": VIEWER_PW}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@contextlib.asynccontextmanager
async def running_console(system: RunningSystem) -> AsyncIterator[ConsoleService]:
    """The console over ``system``'s admin APIs, with an admin and a viewer."""
    settings = ConsoleSettings(
        console_port=0,
        console_users=(
            f"admin:admin:{hash_password(ADMIN_PW)},viewer:viewer:{hash_password(VIEWER_PW)}"
        ),
        admin_token=system.endpoints.admin_token,
        ingest_url=system.endpoints.ingest,
        auth_url=system.endpoints.auth,
        executor_url=system.executor.url,
        ledger_url=system.endpoints.ledger,
        trace_url=TRACES,
        live_poll_s=0.2,
    )
    _screenshots_dir()
    service = await build_console(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def _screenshots_dir() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot under :data:`SHOTS`."""
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, url: str, user: str, password: str) -> None:
    """Sign in through the sign-in page a signed-out visit is sent to."""
    await page.goto(f"{url}/strategies")
    await page.wait_for_url("**/login")  # signed out: the sign-in page
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", password)
    await page.click("#sign-in")
    await page.wait_for_url("**/strategies")


@contextlib.asynccontextmanager
async def signed_in_page(
    browser: Browser, url: str, user: str, viewport: ViewportSize, *, is_mobile: bool = False
) -> AsyncIterator[Page]:
    """A page of a new browser context signed in as ``user``; the context closes after."""
    context = await browser.new_context(viewport=viewport, is_mobile=is_mobile)
    try:
        page = await context.new_page()
        await sign_in(page, url, user, PASSWORDS[user])
        yield page
    finally:
        await context.close()
