"""Connecting a Tradovate login by OAuth from the console, and positions per strategy and per
login, in Debian's chromium over the whole running system (issue 14; ADR-0135, ADR-0136).

The operator presses "Connect Tradovate" on the console's logins page; the browser goes through
auth's single-use link to the simulator's consent page, signs in as the venue user, and comes
back to the console, where the login is active with its three accounts and its token's expiry.
Then a strategy subscribed by those accounts gets a signal; the positions per strategy and per
login show them, each account's broker check beside it. Screenshots go where the journey's go.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page
from tests.e2e.console_browser import DESKTOP, PHONE, running_console, shot, signed_in_page

from phalanx_bench.inprocess import RunningSystem, running_system
from phalanx_bench.seed import front_month
from phalanx_console.service import ConsoleService
from phalanx_testing.browser import browser as browser
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]


@pytest_asyncio.fixture
async def oauth_system(nats_url: str, redis_url: str) -> AsyncIterator[RunningSystem]:
    """The whole system, auth offering OAuth at the simulator's consent pages."""
    async with running_system(nats_url, redis_url, oauth=True) as running:
        yield running


@pytest_asyncio.fixture
async def console(oauth_system: RunningSystem) -> AsyncIterator[ConsoleService]:
    async with running_console(oauth_system) as service:
        yield service


async def _attr(page: Page, selector: str, name: str) -> str:
    return await page.get_attribute(selector, name) or ""


async def test_connect_by_oauth_then_positions_per_strategy_and_login(
    browser: Browser, console: ConsoleService, oauth_system: RunningSystem
) -> None:
    system = oauth_system
    name = f"OAUTHCON_{int(time.time())}"
    login_id = name.lower()
    venue_user = system.sim.create_user(name, "venue-pw", accounts=3)
    account_ids = sorted(int(a["id"]) for a in venue_user.accounts)
    async with signed_in_page(browser, console.url, "admin", DESKTOP) as page:
        await _connect_by_oauth(page, console.url, system, name, venue_user.accounts)
        pool = system.executor.pool
        assert pool is not None
        await eventually(lambda: len(pool) == 1, timeout=30, what="the OAuth login's socket")
        strategy_id = await _follow_and_signal(page, system)
        await _positions_per_strategy(page, console.url, strategy_id, account_ids)
        await _positions_per_login(page, login_id)
    async with signed_in_page(browser, console.url, "viewer", PHONE) as viewer:
        await _viewer_has_no_connect_button(viewer, console.url, login_id)


async def _connect_by_oauth(
    page: Page, console_url: str, system: RunningSystem, name: str, accounts: list[dict[str, Any]]
) -> None:
    """Connect Tradovate: the consent page at the venue, then back on the console's logins
    page with the login active, its accounts and its token's expiry."""
    login_id = name.lower()
    await page.click("#nav-logins")
    assert await page.query_selector("#no-logins, #logins tbody tr[data-status]") is None
    await page.click("#connect-new")
    await page.wait_for_selector("#authorize")  # the venue's consent page
    assert page.url.startswith(f"{system.endpoints.sim}/oauth")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", "venue-pw")
    await page.click("#authorize")
    await page.wait_for_url(f"{console_url}/logins?connected={login_id}")
    assert await page.inner_text("#notice") == f"Connected login {login_id}"
    row = f"#login-{login_id}"
    assert await _attr(page, row, "data-status") == "active"
    text = await page.inner_text(row)
    assert "oauth" in text
    for account in accounts:
        assert f"{account['id']} {account['name']}" in text
    assert 0 < int(await _attr(page, f"#expires-{login_id}", "data-expires-in")) <= 80 * 60
    assert "min" in await page.inner_text(f"#expires-{login_id}")
    await shot(page, "14-logins-connected-by-oauth")


async def _follow_and_signal(page: Page, system: RunningSystem) -> str:
    """A strategy followed by the three accounts; one signal, placed for all three. Returns
    the strategy's id."""
    async with httpx.AsyncClient(timeout=10) as http:
        priced = await http.post(
            f"{system.endpoints.sim}/admin/prices", json={"symbol": front_month(), "price": 21000}
        )
        priced.raise_for_status()
        await page.click("#nav-strategies")
        await page.fill("#create-strategy input[name=name]", "oauth follower")
        await page.fill("#create-strategy input[name=allowed_tickers]", "MNQ1!")
        await page.click("#create")
        webhook_url = await page.input_value("#webhook-url")
        strategy_id = webhook_url.rstrip("/").split("/")[-2]
        await page.click("#to-strategy")
        await page.check("#all-accounts")
        await page.fill("#multiplier", "1")
        await page.click("#subscribe")
        await page.wait_for_url(lambda url: "ok=3+accounts+subscribed" in url)
        entry = {"ticker": "MNQ1!", "action": "buy", "quantity": 1}
        answer = await http.post(webhook_url, json=entry)
        assert answer.status_code == 200, answer.text
        await page.wait_for_selector("#signals tr[data-placed='3']", timeout=60_000)
    return strategy_id


async def _positions_per_strategy(
    page: Page, console_url: str, strategy_id: str, account_ids: list[int]
) -> None:
    """Per strategy: the three accounts long 1, each with its broker check (none yet)."""
    symbol = front_month()
    group = f"#strategy-{strategy_id}"

    async def strategy_shown() -> bool:
        await page.goto(f"{console_url}/positions/strategies")
        found = await page.query_selector(f"{group}[data-open='3']")
        return found is not None

    await eventually(strategy_shown, timeout=60, interval=1, what="3 positions for the strategy")
    assert "oauth follower" in await page.inner_text(f"{group} h2")
    for account_id in account_ids:
        cells = f"{group}-{account_id}-{symbol}"
        assert await _attr(page, cells, "data-net") == "1"
        assert await _attr(page, cells, "data-check") == "unchecked"
    assert await _attr(page, group, "data-flag") == ""
    await shot(page, "15-positions-per-strategy")


async def _positions_per_login(page: Page, login_id: str) -> None:
    """Per login: the OAuth login reaches the three accounts, all open."""
    await page.click("#nav-positions-logins")
    login_group = f"#login-{login_id}"
    await page.wait_for_selector(login_group)
    assert await _attr(page, login_group, "data-accounts") == "3"
    assert await _attr(page, login_group, "data-open") == "3"
    await shot(page, "16-positions-per-login")


async def _viewer_has_no_connect_button(viewer: Page, console_url: str, login_id: str) -> None:
    """The viewer sees the logins and positions per login, and has no connect button."""
    await viewer.goto(f"{console_url}/logins")
    assert await viewer.query_selector("#connect-new") is None
    assert await viewer.query_selector(f"#reconnect-{login_id}") is None
    for path in ("/positions/strategies", "/positions/logins"):
        await viewer.goto(f"{console_url}{path}")
        width = await viewer.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide at phone width"
