"""The operator console in Debian's chromium (Playwright) over the whole running system.

The journey of issue 14: sign in; create a strategy and copy its webhook URL; subscribe all 25
simulated accounts (5 logins x 5) with multiplier 2; change a setting; send a test signal;
post the copied TradingView alert message (placeholders filled in as TradingView does) to the
copied URL and watch the 25 outcomes arrive on the open page (server-sent events, no reload);
open the signal; see 25 positions of 2; flatten with the kill switch; see every position flat
(and the venue agree); see each login's request budget in use and disconnect one; rotate the
secret (the old URL still works in its grace period). Then the access checks: signed out,
the read-only role (at phone width), a CSRF token tampered with.

A second journey, drift (ADR-0134): a trade made by hand at the simulator while the executor
is down; "reconcile now" flags the account with both sides; the viewer has no button.

A screenshot of each page goes to ``screenshots/console/`` (git-ignored;
``PHALANX_SCREENSHOTS_DIR`` moves it). Chromium is Debian's, as in the account page's test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page
from tests.e2e.console_browser import (
    ADMIN_PW,
    DESKTOP,
    PHONE,
    running_console,
    shot,
    sign_in,
    signed_in_page,
)

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import front_month, seed
from phalanx_console.service import ConsoleService
from phalanx_testing.browser import browser as browser
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]


@pytest_asyncio.fixture
async def console(system: RunningSystem) -> AsyncIterator[ConsoleService]:
    async with running_console(system) as service:
        yield service


async def _venue_net(http: httpx.AsyncClient, system: RunningSystem, account: int) -> int:
    resp = await http.get(f"{system.endpoints.sim}/admin/positions?accountId={account}")
    resp.raise_for_status()
    positions: list[dict[str, Any]] = resp.json()
    return sum(int(p["netPos"]) for p in positions)


async def test_operator_journey_in_the_console(
    browser: Browser, console: ConsoleService, system: RunningSystem
) -> None:
    seeded = await seed(system.endpoints, logins=5, accounts_per_login=5, strategy_name="seeded")
    assert len(seeded.account_ids) == 25
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 5, timeout=30, what="5 logins connected")
    async with httpx.AsyncClient(timeout=10) as http:
        priced = await http.post(
            f"{system.endpoints.sim}/admin/prices", json={"symbol": front_month(), "price": 21000}
        )
        priced.raise_for_status()

        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(console.url)
        await page.wait_for_url("**/login")
        await shot(page, "01-sign-in")
        await sign_in(page, console.url, "admin", ADMIN_PW)
        assert await page.inner_text("#who") == "admin (admin)"

        webhook_url, alert_template, strategy_id = await _create_strategy(page)
        await _subscribe_all(page, seeded.account_ids)
        await _change_a_setting(page, http, system, strategy_id)
        await _send_a_test_signal(page, http, system, webhook_url)
        await _post_the_alert(page, http, seeded.account_ids, alert_template, webhook_url)
        await _open_the_signal(page)
        await _see_25_positions_of_2(page)
        await _engage_the_kill_switch(page)
        await _see_flat_everywhere(page, http, system, seeded.account_ids)
        await _budgets_and_disconnect(page, seeded.logins)
        await _rotate_the_secret(page, http, console.url, strategy_id, webhook_url)
        await _tampered_csrf_is_refused(page, console.url)
        await context.close()

    # signed out: every page sends to the sign-in page
    anonymous = await browser.new_context()
    stranger = await anonymous.new_page()
    for path in ("/trading", f"/strategies/{strategy_id}", "/positions"):
        await stranger.goto(f"{console.url}{path}")
        assert stranger.url == f"{console.url}/login"
    await anonymous.close()

    await _viewer_at_phone_width(browser, console.url, strategy_id)
    async with httpx.AsyncClient(timeout=10) as http:
        states = await http.get(
            f"{system.executor.url}/admin/trading-state",
            headers={"Authorization": f"Bearer {system.endpoints.admin_token}"},
        )
        glob = next(s for s in states.json()["states"] if s["scope"] == "global")
        assert glob["state"] == "HALTED"
        assert glob["by"] == "admin"


async def _viewer_at_phone_width(browser: Browser, console_url: str, strategy_id: str) -> None:
    """The read-only role, at phone width: sees everything, has no control, cannot post."""
    async with signed_in_page(browser, console_url, "viewer", PHONE, is_mobile=True) as viewer:
        await _viewer_sees_no_control(viewer, console_url, strategy_id)


async def _viewer_sees_no_control(viewer: Page, console_url: str, strategy_id: str) -> None:
    assert await viewer.query_selector("#create-strategy") is None
    await viewer.goto(f"{console_url}/strategies/{strategy_id}")
    await viewer.wait_for_selector("#signals tr[data-placed='25']")
    assert await viewer.query_selector("#subscribe-form") is None
    assert await viewer.is_disabled("#settings-form fieldset input[name=name]")
    await shot(viewer, "10-viewer-phone-strategy")
    for path in (f"/strategies/{strategy_id}", "/strategies", "/positions", "/trading", "/logins"):
        await viewer.goto(f"{console_url}{path}")
        width = await viewer.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width}px wide at phone width (tables scroll inside)"
    await viewer.goto(f"{console_url}/trading")
    assert await viewer.query_selector("#kill-form") is None
    assert await viewer.inner_text("#global-state") == "HALTED"
    status = await viewer.evaluate(
        """async () => {
            const csrf = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const body = new URLSearchParams({csrf, state: 'ACTIVE', confirm: 'on'});
            return (await fetch('/trading/state', {method: 'POST', body})).status;
        }"""
    )
    assert status == 403
    await shot(viewer, "11-viewer-phone-trading")


async def _create_strategy(page: Page) -> tuple[str, str, str]:
    """Create a strategy; its webhook URL (with the secret) is shown this once."""
    await page.fill("#create-strategy input[name=name]", "console journey")
    await page.fill("#create-strategy input[name=allowed_tickers]", "MNQ1!")
    await page.click("#create")
    webhook_url = await page.input_value("#webhook-url")
    assert "/webhooks/" in webhook_url
    assert "{secret}" not in webhook_url
    alert_template = await page.input_value("#alert-template")
    assert "{{strategy.order.action}}" in alert_template
    await shot(page, "02-strategy-created")
    strategy_id = webhook_url.rstrip("/").split("/")[-2]
    return webhook_url, alert_template, strategy_id


async def _subscribe_all(page: Page, account_ids: list[int]) -> None:
    """Subscribe every linked account at once, multiplier 2."""
    await page.click("#to-strategy")
    await page.check("#all-accounts")
    await page.fill("#multiplier", "2")
    await page.click("#subscribe")
    await page.wait_for_url(lambda url: "ok=25+accounts+subscribed" in url)
    rows = await page.query_selector_all("#subscriptions tbody tr[data-enabled=true]")
    assert len(rows) == 25
    for account in account_ids:
        cells = await page.inner_text(f"#sub-{account}")
        assert cells.split("\t")[1].strip() == "2"
    await page.wait_for_selector("#no-signals")  # the live log is connected and empty
    await shot(page, "03-strategy-subscribed")


async def _change_a_setting(
    page: Page, http: httpx.AsyncClient, system: RunningSystem, strategy_id: str
) -> None:
    """Settings: a new maximum quantity is saved at ingest."""
    await page.fill("#settings-form input[name=max_quantity]", "10")
    await page.click("#save-settings")
    await page.wait_for_url(lambda url: "ok=settings+saved" in url)
    assert await page.input_value("#settings-form input[name=max_quantity]") == "10"
    stored = await http.get(
        f"{system.endpoints.ingest}/admin/strategies/{strategy_id}",
        headers={"Authorization": f"Bearer {system.endpoints.admin_token}"},
    )
    assert stored.json()["max_quantity"] == 10


async def _send_a_test_signal(
    page: Page, http: httpx.AsyncClient, system: RunningSystem, webhook_url: str
) -> None:
    """A test signal through the pasted URL: planned for all 25, sent to none."""
    await page.fill("#test-form input[name=webhook_url]", webhook_url)
    await page.click("#send-test")
    await page.wait_for_url(lambda url: "ok=test+signal+sent" in url)
    await page.wait_for_selector("#signals tr[data-test=true][data-skipped='25']")
    assert len(await page.query_selector_all(".outcomes tr[data-outcome=skipped]")) == 25
    assert "test-signal" in await page.inner_text(".outcomes")
    orders = await http.get(f"{system.endpoints.sim}/admin/stats")
    assert orders.json()["placeOso"] == 0


async def _post_the_alert(
    page: Page,
    http: httpx.AsyncClient,
    account_ids: list[int],
    alert_template: str,
    webhook_url: str,
) -> None:
    """The alert message as TradingView fills it in, to the copied URL: the open page fills."""
    # in 25 placed outcomes by itself
    alert = alert_template
    for placeholder, value in {
        "{{ticker}}": "MNQ1!",
        "{{strategy.order.action}}": "buy",
        "{{strategy.order.contracts}}": "1",
        "{{close}}": "21000.25",
        "{{timenow}}": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }.items():
        alert = alert.replace(placeholder, value)
    assert "{{" not in alert
    answer = await http.post(
        webhook_url, content=alert, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    await page.wait_for_selector("#signals tr[data-placed='25']", timeout=60_000)
    placed = await page.query_selector_all(".outcomes tr[data-outcome=placed]")
    assert len(placed) == 25
    assert {int(await r.get_attribute("data-account") or 0) for r in placed} == set(account_ids)
    await shot(page, "04-signal-live")


async def _open_the_signal(page: Page) -> None:
    """The signal's own page: every account, phase timings, the trace link."""
    await page.click("#signals tbody tr a")
    await page.wait_for_selector("#signal-status")
    assert (await page.inner_text("#signal-status")).startswith("done")
    trace = await page.get_attribute("dl.facts a[target=_blank]", "href")
    assert trace is not None
    assert trace.startswith("https://grafana.example/explore?traceId=")
    assert len(await page.query_selector_all(".outcomes tr[data-outcome=placed]")) == 25
    await shot(page, "05-signal")


async def _see_25_positions_of_2(page: Page) -> None:
    """Positions: 25 accounts long 2 (the page refreshes itself)."""
    await page.click("#nav-positions")
    await page.wait_for_selector("#positions-summary[data-open='25']", timeout=60_000)
    nets = [
        await r.get_attribute("data-net")
        for r in await page.query_selector_all("#positions tbody tr")
    ]
    assert nets.count("2") == 25
    await shot(page, "06-positions-open")


async def _engage_the_kill_switch(page: Page) -> None:
    """The kill switch: confirmation refused without the word, then engaged."""
    await page.click("#nav-trading")
    await page.fill("#kill-reason", "journey test")
    await page.click("#kill")
    assert "type FLATTEN" in await page.inner_text("#error")
    assert await page.inner_text("#global-state") != "HALTED"
    await page.fill("#kill-reason", "journey test")
    await page.fill("#kill-confirm", "FLATTEN")
    await page.click("#kill")
    await page.wait_for_url(lambda url: "/trading?ok=" in url)
    assert await page.inner_text("#global-state") == "HALTED"
    row = await page.inner_text("#state-global")
    assert "kill switch: journey test" in row
    assert "admin" in row  # who
    assert "UTC" in row  # when
    await shot(page, "07-trading-halted")


async def _see_flat_everywhere(
    page: Page, http: httpx.AsyncClient, system: RunningSystem, account_ids: list[int]
) -> None:
    """Flat everywhere: on the page (the ledger) and at the venue."""
    await page.click("#nav-positions")
    await page.wait_for_selector("#positions-summary[data-open='0']", timeout=60_000)
    total = await page.get_attribute("#positions-summary", "data-total")
    assert int(total or 0) >= 25
    for account in account_ids:
        assert await _venue_net(http, system, account) == 0
    await shot(page, "08-positions-flat")


async def _budgets_and_disconnect(page: Page, logins: list[str]) -> None:
    """Logins: each active, with the venue requests its 5 accounts cost in the hour window."""
    await page.click("#nav-logins")
    assert len(await page.query_selector_all("#logins tbody tr[data-status=active]")) == 5
    for login in logins:
        windows = await page.query_selector_all(f"#budget-{login} [data-used]")
        assert len(windows) == 2  # the login's minute and hour
        hour = windows[-1]
        assert int(await hour.get_attribute("data-used") or 0) >= 5, login
    await shot(page, "09-logins")
    gone = logins[0]
    await page.click(f"#disconnect-{gone}")  # unconfirmed: refused
    assert "confirm" in await page.inner_text("#error")
    assert await page.get_attribute(f"#login-{gone}", "data-status") == "active"
    await page.check(f"#login-{gone} input[name=confirm]")
    await page.click(f"#disconnect-{gone}")
    await page.wait_for_url(lambda url: "ok=disconnected" in url)
    assert await page.get_attribute(f"#login-{gone}", "data-status") == "disconnected"


async def _rotate_the_secret(
    page: Page, http: httpx.AsyncClient, console_url: str, strategy_id: str, webhook_url: str
) -> None:
    """Rotate the secret (confirmed): a new URL, shown once; the old one works for the grace."""
    await page.goto(f"{console_url}/strategies/{strategy_id}")
    await page.check("#rotate-form input[name=confirm]")
    await page.click("#rotate")
    rotated_url = await page.input_value("#webhook-url")
    assert rotated_url != webhook_url
    assert rotated_url.startswith(webhook_url.rsplit("/", 1)[0] + "/")
    assert "keeps working until" in await page.inner_text(".warn")
    for url in (rotated_url, webhook_url):
        probe = await http.post(url, json={"ticker": "MNQ1!", "action": "exit", "test": True})
        assert probe.status_code == 200, probe.text
    wrong = await http.post(webhook_url + "x", json={"ticker": "MNQ1!", "action": "exit"})
    assert wrong.status_code == 403


async def _tampered_csrf_is_refused(page: Page, console_url: str) -> None:
    """CSRF: a form whose token was tampered with is refused and changes nothing."""
    await page.click("#nav-trading")
    await page.select_option("#state", "ACTIVE")
    await page.check("#state-confirm")
    await page.eval_on_selector("#state-form input[name=csrf]", "e => e.value = 'forged'")
    await page.click("#set-state")
    assert "CSRF" in await page.inner_text("#refusal")
    await page.goto(f"{console_url}/trading")
    assert await page.inner_text("#global-state") == "HALTED"


async def _checked_once_both_ok(page: Page, watched: int, by_hand: int) -> None:
    """Nothing checked yet (not shown as ok); unconfirmed refused; then both agree."""
    for account in (watched, by_hand):
        assert await page.get_attribute(f"#check-{account}", "data-state") == "unchecked"
    # unconfirmed: refused, nothing checked
    await page.click("#reconcile")
    assert "tick the box" in await page.inner_text("#error")
    assert await page.get_attribute(f"#check-{by_hand}", "data-state") == "unchecked"
    # both accounts agree with the broker
    await page.check("#reconcile-confirm")
    await page.click("#reconcile")
    await page.wait_for_url(lambda url: "/positions?ok=" in url)
    assert "2 accounts checked: 2 ok" in await page.inner_text("#notice")


async def _drift_flagged(page: Page, by_hand: int, symbol: str, strategy_id: str) -> None:
    """Reconcile until the manual trade shows as drift, with both sides and the P&L."""
    first = await _press_reconcile(page, by_hand)
    assert first in ("unknown", "drift")
    if first == "unknown":
        assert "recent fill" in await page.inner_text(f"#reason-{by_hand}")

    async def drifted() -> bool:
        state = await _press_reconcile(page, by_hand)
        assert state in ("unknown", "drift")
        return state == "drift"

    if first != "drift":  # pressed again (every 3 s) until the grace is over
        await eventually(drifted, timeout=60, interval=3, what="the manual trade's drift")
    # both sides of the contract: the ledger held long 1, the broker short 1
    sides = f"#sides-{by_hand}-{symbol}"
    assert await page.get_attribute(sides, "data-ledger") == "1"
    assert await page.get_attribute(sides, "data-broker") == "-1"
    assert "explained by 1 fill" in await page.inner_text(f"#explained-{by_hand}")
    assert await page.get_attribute("#reconciliation-summary", "data-drift") == "1"
    # the manual fill is recorded: the position follows the broker, still flagged
    row = f"#position-{by_hand}-{symbol}"
    await page.wait_for_selector(f"{row}[data-net='-1'][data-check='drift']", timeout=30_000)
    # unrealized beside realized: the strategy's long on the other account, marked at the
    # manual fill's price (10 points x $2); the manual sell realized 10 points for "outside"
    strategy_row = f"#pnl-strategy-{strategy_id}-USD"
    unrealized = await page.get_attribute(strategy_row, "data-unrealized")
    assert Decimal(unrealized or "nan") == 10 * 2
    realized = await page.get_attribute("#pnl-strategy-outside-USD", "data-realized")
    assert Decimal(realized or "nan") == 10 * 2


async def _viewer_sees_drift(browser: Browser, console_url: str, by_hand: int) -> None:
    """The viewer sees the flag and both sides, and has no button (at phone width)."""
    async with signed_in_page(browser, console_url, "viewer", PHONE, is_mobile=True) as viewer:
        await _viewer_sees_drift_on(viewer, by_hand)


async def _viewer_sees_drift_on(viewer: Page, by_hand: int) -> None:
    await viewer.click("#nav-positions")
    await viewer.wait_for_selector(f"#check-{by_hand}[data-state=drift]")
    assert await viewer.query_selector("#reconcile-form") is None
    assert await viewer.query_selector("#reconcile") is None
    width = await viewer.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"/positions is {width}px wide at phone width"
    await shot(viewer, "13-viewer-positions-drift")


async def _press_reconcile(page: Page, account: int) -> str:
    """Press "reconcile now" for one account, confirmed; the state its check shows after."""
    await page.fill("#reconcile-account", str(account))
    await page.check("#reconcile-confirm")
    await page.click("#reconcile")
    await page.wait_for_url(lambda url: "/positions?ok=" in url)
    return await page.get_attribute(f"#check-{account}", "data-state") or ""


async def test_drift_in_the_console(
    browser: Browser, console: ConsoleService, system: RunningSystem
) -> None:
    """A trade made by hand at the broker while Phalanx does not watch is flagged as drift.

    The executor watches every linked login's socket and records any fill it sees, a manual
    one too; so "behind Phalanx's back" is a trade while the executor is down (the ledger still
    reconciles: it asks the broker itself, ADR-0125).
    """
    seeded = await seed(system.endpoints, logins=1, accounts_per_login=2, strategy_name="drift")
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 1, timeout=30, what="the login connected")
    symbol = front_month()
    watched, by_hand = seeded.account_ids
    async with httpx.AsyncClient(timeout=10) as http:
        priced = await http.post(
            f"{system.endpoints.sim}/admin/prices", json={"symbol": symbol, "price": 21000}
        )
        priced.raise_for_status()
        entry = {"ticker": "MNQ1!", "action": "buy", "quantity": 1}
        assert (await http.post(seeded.webhook_url, json=entry)).status_code == 200

        async with signed_in_page(browser, console.url, "admin", DESKTOP) as page:
            await _drift_journey(page, http, system, seeded.strategy_id, watched, by_hand)

    await _viewer_sees_drift(browser, console.url, by_hand)


async def _drift_journey(
    page: Page,
    http: httpx.AsyncClient,
    system: RunningSystem,
    strategy_id: str,
    watched: int,
    by_hand: int,
) -> None:
    symbol = front_month()
    await page.click("#nav-positions")
    await page.wait_for_selector("#positions-summary[data-open='2']", timeout=60_000)
    await _checked_once_both_ok(page, watched, by_hand)

    # Phalanx stops watching; the account's owner sells 2 in Tradovate's app, 10 points up
    await system.executor.stop()
    moved = await http.post(
        f"{system.endpoints.sim}/admin/prices", json={"symbol": symbol, "price": 21010}
    )
    moved.raise_for_status()
    trade = {"accountId": by_hand, "symbol": symbol, "action": "Sell", "qty": 2}
    (await http.post(f"{system.endpoints.sim}/admin/trades", json=trade)).raise_for_status()
    assert await _venue_net(http, system, by_hand) == -1

    await _drift_flagged(page, by_hand, symbol, strategy_id)
    await shot(page, "12-positions-drift")
