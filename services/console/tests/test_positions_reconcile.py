"""The positions page over a real ledger that reconciles with the simulator (ADR-0134).

A real nats-server, the simulator as the broker, the ledger service reading the accounts and
tokens buckets (written here the way auth writes them), and the console over the ledger's
HTTP API. Trades are made by hand at the simulator, behind the ledger's back; the console's
"reconcile now" makes the ledger find them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
import pytest_asyncio

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import encode
from phalanx_common.crypto import KeyRing, seal_token
from phalanx_common.records import AccountRecord, TokenRecord
from phalanx_console.passwords import hash_password
from phalanx_console.service import ConsoleService, build_console
from phalanx_console.settings import ConsoleSettings
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_sim.runner import Simulator
from phalanx_sim.testing import login_body
from phalanx_sim.testing import simulator as simulator
from phalanx_testing.servers import free_port
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = "console-recon-test-admin-token-3f9a"
KEYS = "t1:" + base64.b64encode(bytes(range(32))).decode()
ADMIN_PW = "admin-pw-for-recon"
VIEWER_PW = "viewer-pw-for-recon"
SYMBOL = "MNQZ6"
POINT_VALUE = Decimal(2)  # MNQ: $2 a point
FEE_PER_CONTRACT = Decimal("0.75")  # commission 0.25 + exchange fee 0.50


@dataclass
class Linked:
    account_id: int
    login_id: str


async def _link(bus: Bus, sim: Simulator, name: str, *, token: bool = True) -> Linked:
    """A simulator account linked in the buckets as auth links it."""
    created = sim.create_user(name, "pw-" + name, 1)
    account = created.accounts[0]
    login_id = f"login-{name}"
    record = AccountRecord(
        account_id=account["id"],
        account_spec=account["name"],
        login_id=login_id,
        user_id=created.userId,
    )
    await (await bus.key_value(subjects.Buckets.ACCOUNTS)).put(
        str(record.account_id), encode(record)
    )
    if token:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(
                sim.rest_url + "/auth/accesstokenrequest", json=login_body(name, "pw-" + name)
            )
        body = answer.json()
        sealed = seal_token(
            KeyRing.parse(KEYS),
            TokenRecord(
                login_id=login_id,
                user_id=created.userId,
                access_token=body["accessToken"],
                expiration_time=body["expirationTime"],
            ),
        )
        await (await bus.key_value(subjects.Buckets.TOKENS)).put(login_id, encode(sealed))
    return Linked(account_id=account["id"], login_id=login_id)


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    connection = await Bus.connect(nats_url, "test")
    await connection.ensure_topology()
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture
async def ledger(nats_url: str, simulator: Simulator, bus: Bus) -> AsyncIterator[LedgerService]:
    settings = LedgerSettings(
        nats_url=nats_url,
        ledger_port=0,
        admin_token=TOKEN,
        token_keys=KEYS,
        tradovate_rest_url=simulator.rest_url,
        reconcile_interval_s=0.0,  # only when asked: by the console's button
        reconcile_fill_grace_s=0.0,
    )
    service = await build_ledger(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture
async def console(ledger: LedgerService) -> AsyncIterator[ConsoleService]:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = ConsoleSettings(
        console_port=0,
        console_users=(
            f"alice:admin:{hash_password(ADMIN_PW)},victor:viewer:{hash_password(VIEWER_PW)}"
        ),
        admin_token=TOKEN,
        ingest_url=nowhere,
        auth_url=nowhere,
        executor_url=nowhere,
        ledger_url=ledger.url,
    )
    service = await build_console(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class Browser:
    """A signed-in user of the console (the cookie sent by hand: it is Secure, this is http)."""

    def __init__(self, http: httpx.AsyncClient, console: ConsoleService, session_id: str) -> None:
        self.http = http
        self.console = console
        self.session_id = session_id
        session = console.sessions.get(session_id)
        assert session is not None
        self.csrf = session.csrf

    @classmethod
    async def sign_in(
        cls, http: httpx.AsyncClient, console: ConsoleService, user: str, pw: str
    ) -> Browser:
        resp = await http.post(
            "/login", data={"user": user, "password": pw}, headers={"Origin": console.url}
        )
        assert resp.status_code == 303, resp.text
        return cls(http, console, resp.headers["set-cookie"].split(";")[0].split("=", 1)[1])

    async def page(self, path: str = "/positions") -> str:
        resp = await self.http.get(path, headers={"Cookie": f"phalanx_console={self.session_id}"})
        assert resp.status_code == 200, resp.text
        return resp.text

    async def reconcile(self, **fields: str) -> httpx.Response:
        return await self.http.post(
            "/positions/reconcile",
            data={"csrf": self.csrf, **fields},
            headers={"Cookie": f"phalanx_console={self.session_id}", "Origin": self.console.url},
        )


async def _sim(sim: Simulator, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        resp = await client.request(method, sim.url + path, json=body)
    assert resp.is_success, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


async def _manual_trade(sim: Simulator, account_id: int, action: str, qty: int) -> None:
    trade = {"accountId": account_id, "symbol": SYMBOL, "action": action, "qty": qty}
    await _sim(sim, "POST", "/admin/trades", trade)


async def _ledger_drift(ledger: LedgerService) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        resp = await client.get(
            ledger.url + "/admin/drift", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    rows: list[dict[str, Any]] = resp.json()["reconciliations"]
    return rows


def _attrs(html: str, element_id: str) -> dict[str, str]:
    """The ``data-*`` attributes of the element with ``id``."""
    match = re.search(rf'<[a-z]+\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', html)
    assert match is not None, f"no #{element_id} on the page"
    return dict(re.findall(r'\bdata-([a-z-]+)="([^"]*)"', match.group(0)))


async def test_reconcile_now_flags_the_account_that_traded_behind_phalanxs_back(
    bus: Bus, simulator: Simulator, ledger: LedgerService, console: ConsoleService
) -> None:
    drifted = await _link(bus, simulator, "by-hand")
    agreeing = await _link(bus, simulator, "quiet")
    tokenless = await _link(bus, simulator, "no-token", token=False)
    await _sim(simulator, "POST", "/admin/prices", {"symbol": SYMBOL, "price": 21000})
    await _manual_trade(simulator, drifted.account_id, "Buy", 2)  # the ledger never hears of it

    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        admin = await Browser.sign_in(http, console, "alice", ADMIN_PW)
        viewer = await Browser.sign_in(http, console, "victor", VIEWER_PW)
        before = await viewer.page()
        assert 'id="reconcile-form"' not in before  # the viewer has no button
        assert _attrs(before, "reconciliation-summary")["drift"] == "0"

        # refused, and the ledger asked nobody: the viewer; an admin without the confirmation,
        # with a forged CSRF token, with an account id that is not one
        refused = await viewer.reconcile(confirm="on")
        assert refused.status_code == 403
        assert "read-only" in refused.text
        unconfirmed = await admin.reconcile()
        assert unconfirmed.status_code == 422
        assert "tick the box to confirm" in unconfirmed.text
        forged = await http.post(
            "/positions/reconcile",
            data={"csrf": "forged", "confirm": "on"},
            headers={"Cookie": f"phalanx_console={admin.session_id}", "Origin": console.url},
        )
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        bad_account = await admin.reconcile(confirm="on", account="7&fetch_fills=true")
        assert bad_account.status_code == 422
        assert await _ledger_drift(ledger) == []

        done = await admin.reconcile(confirm="on")
        assert done.status_code == 303, done.text
        assert unquote_plus(done.headers["location"]) == (
            "/positions?ok=3 accounts checked: 1 drift, 1 unknown, 1 ok"
        )
        shown = await admin.page(done.headers["location"])
        assert "3 accounts checked: 1 drift, 1 unknown, 1 ok" in shown
        assert _attrs(shown, "reconciliation-summary") == {
            "drift": "1",
            "unknown": "1",
            "unchecked": "0",
            "ok": "1",
        }
        assert _attrs(shown, f"check-{drifted.account_id}")["state"] == "drift"
        sides = _attrs(shown, f"sides-{drifted.account_id}-{SYMBOL}")
        assert (sides["ledger"], sides["broker"]) == ("0", "2")  # both sides of the contract
        assert _attrs(shown, f"check-{tokenless.account_id}")["state"] == "unknown"
        assert "no access token" in shown
        assert _attrs(shown, f"check-{agreeing.account_id}")["state"] == "ok"
        # the viewer sees the same flags
        seen = await viewer.page()
        assert _attrs(seen, f"check-{drifted.account_id}")["state"] == "drift"

        # the fetched fills are recorded: the position appears, still flagged by its last check
        async def position_shown() -> str:
            html = await admin.page()
            return html if f'id="position-{drifted.account_id}-{SYMBOL}"' in html else ""

        html = await eventually(position_shown, what="the recorded manual fill's position")
        row = _attrs(html, f"position-{drifted.account_id}-{SYMBOL}")
        assert (row["net"], row["check"]) == ("2", "drift")


async def test_pnl_per_strategy_and_account_is_net_of_fees_with_unrealized_beside_it(
    bus: Bus, simulator: Simulator, ledger: LedgerService, console: ConsoleService
) -> None:
    linked = await _link(bus, simulator, "trader")
    await _sim(
        simulator,
        "PUT",
        "/admin/fees",
        {"product": "MNQ", "commission": 0.25, "exchangeFee": 0.5},
    )
    opened, closed = Decimal(21000), Decimal("21010.25")
    await _sim(simulator, "POST", "/admin/prices", {"symbol": SYMBOL, "price": float(opened)})
    await _manual_trade(simulator, linked.account_id, "Buy", 2)
    await _sim(simulator, "POST", "/admin/prices", {"symbol": SYMBOL, "price": float(closed)})
    await _manual_trade(simulator, linked.account_id, "Sell", 1)

    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        admin = await Browser.sign_in(http, console, "alice", ADMIN_PW)

        async def fees_in() -> dict[str, str]:
            # each round records the missing fills, and the fees of fills already recorded
            resp = await admin.reconcile(confirm="on", account=str(linked.account_id))
            assert resp.status_code == 303
            html = await admin.page()
            if 'id="pnl-strategy-outside-USD"' not in html:
                return {}
            row = _attrs(html, "pnl-strategy-outside-USD")
            return row if Decimal(row["fees"]) == 3 * FEE_PER_CONTRACT else {}

        by_strategy = await eventually(fees_in, what="the fills and their fees in the ledger")
        html = await admin.page()

    realized = (closed - opened) * 1 * POINT_VALUE  # one of the two sold at the new price
    unrealized = (closed - opened) * 1 * POINT_VALUE  # the other marked at the last fill
    fees = 3 * FEE_PER_CONTRACT
    expected = {
        "realized": realized,
        "fees": fees,
        "net": realized - fees,
        "unrealized": unrealized,
        "total": realized - fees + unrealized,
    }
    for row in (by_strategy, _attrs(html, f"pnl-account-{linked.account_id}-USD")):
        assert {k: Decimal(row[k]) for k in expected} == expected
    position = html.split(f'id="position-{linked.account_id}-{SYMBOL}"')[1].split("</tr>")[0]
    assert f"{unrealized:,.2f} USD" in position


async def test_positions_per_strategy_and_per_login_flag_the_drifted_account(
    bus: Bus, simulator: Simulator, ledger: LedgerService, console: ConsoleService
) -> None:
    drifted = await _link(bus, simulator, "by-hand-2")
    agreeing = await _link(bus, simulator, "quiet-2")
    await _sim(simulator, "POST", "/admin/prices", {"symbol": SYMBOL, "price": 21000})
    await _manual_trade(simulator, drifted.account_id, "Buy", 2)  # the ledger never hears of it

    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        viewer = await Browser.sign_in(http, console, "victor", VIEWER_PW)
        admin = await Browser.sign_in(http, console, "alice", ADMIN_PW)
        assert (await admin.reconcile(confirm="on")).status_code == 303

        async def strategy_page() -> str:
            html = await viewer.page("/positions/strategies")
            return html if 'id="strategy-outside"' in html else ""

        # the manual fill, recorded by the check, belongs to no strategy: "outside"
        html = await eventually(strategy_page, what="the recorded fill under outside")
        assert _attrs(html, "strategy-outside")["flag"] == "drift"
        row = _attrs(html, f"strategy-outside-{drifted.account_id}-{SYMBOL}")
        assert (row["net"], row["check"]) == ("2", "drift")
        assert _attrs(html, "groups-summary") == {"groups": "1", "drift": "1"}
        only = await viewer.page("/positions/strategies?strategy=outside")
        assert _attrs(only, "strategy-outside")["open"] == "1"

        by_login = await viewer.page(f"/positions/logins?login={drifted.login_id}")
        group = _attrs(by_login, f"login-{drifted.login_id}")
        assert (group["flag"], group["accounts"], group["open"]) == ("drift", "1", "1")
        row = _attrs(by_login, f"login-{drifted.login_id}-{drifted.account_id}-{SYMBOL}")
        assert (row["net"], row["check"]) == ("2", "drift")
        quiet = await viewer.page(f"/positions/logins?login={agreeing.login_id}")
        assert _attrs(quiet, f"login-{agreeing.login_id}") == {
            "flag": "",
            "open": "0",
            "accounts": "1",
        }
        for bad in ("/positions/logins?login=..", "/positions/strategies?strategy=a%2Fb"):
            resp = await http.get(bad, headers={"Cookie": f"phalanx_console={viewer.session_id}"})
            assert resp.status_code == 404, bad
