"""Reconciliation with the broker over a real nats-server and the simulator (ADR-0125).

The accounts and tokens buckets are written the way auth writes them (the token sealed with
the ledger's key ring); the venue is the simulator, reached over its REST API like Tradovate.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode, decode_event, encode
from phalanx_common.crypto import KeyRing, seal_token
from phalanx_common.events import (
    FillReceived,
    OrderAccepted,
    PositionDrift,
    TradingStateChanged,
)
from phalanx_common.records import AccountRecord, TokenRecord, TradingStateRecord
from phalanx_ledger.reconciler import Reconciler
from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings
from phalanx_sim.runner import Simulator
from phalanx_sim.testing import login_body
from phalanx_sim.testing import simulator as simulator
from phalanx_testing.clock import FakeClock
from phalanx_testing.waiting import eventually

pytestmark = pytest.mark.integration

TOKEN = "ledger-admin-token-for-recon-tests-7c1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEYS = "t1:" + base64.b64encode(bytes(range(32))).decode()
PERIOD_S = 60.0


@dataclass
class Linked:
    """An account of a simulator user, linked in the buckets as auth would link it."""

    account_id: int
    account_spec: str
    user_id: int
    login_id: str


async def _link(bus: Bus, sim: Simulator, name: str, *, token: bool = True) -> Linked:
    created = sim.create_user(name, "pw-" + name, 1)
    account = created.accounts[0]
    login_id = f"login-{name}"
    accounts = await bus.key_value(subjects.Buckets.ACCOUNTS)
    record = AccountRecord(
        account_id=account["id"],
        account_spec=account["name"],
        login_id=login_id,
        user_id=created.userId,
    )
    await accounts.put(str(record.account_id), encode(record))
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
        tokens = await bus.key_value(subjects.Buckets.TOKENS)
        await tokens.put(login_id, encode(sealed))
    return Linked(
        account_id=account["id"],
        account_spec=account["name"],
        user_id=created.userId,
        login_id=login_id,
    )


async def _manual_trade(sim: Simulator, account_id: int, action: str, qty: int) -> list[int]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        answer = await client.post(
            sim.url + "/admin/trades",
            json={"accountId": account_id, "symbol": "MNQZ6", "action": action, "qty": qty},
        )
    assert answer.status_code == 200, answer.text
    fill_ids: list[int] = answer.json()["fillIds"]
    assert fill_ids
    return fill_ids


async def _drift_events(bus: Bus, account_id: int) -> list[PositionDrift]:
    subject = subjects.drift_subject(account_id)
    sub = await bus.js.subscribe(subject, stream=subjects.CONTROL.name, ordered_consumer=True)
    events: list[PositionDrift] = []
    try:
        info = await bus.js.stream_info(subjects.CONTROL.name)
        if info.state.messages:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except TimeoutError:
                    break
                event = decode_event(msg.data)
                assert isinstance(event, PositionDrift)
                events.append(event)
    finally:
        await sub.unsubscribe()
    return events


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _ledger(
    nats_url: str, sim: Simulator, clock: FakeClock, **overrides: object
) -> LedgerService:
    values: dict[str, object] = {
        "nats_url": nats_url,
        "ledger_port": 0,
        "admin_token": TOKEN,
        "token_keys": KEYS,
        "tradovate_rest_url": sim.rest_url,
        "reconcile_interval_s": PERIOD_S,
        "reconcile_fill_grace_s": 0.0,
    }
    settings = LedgerSettings(**(values | overrides))  # type: ignore[arg-type]
    service = await build_ledger(settings, clock=clock)
    await service.start()
    return service


@pytest.fixture
async def started(
    nats_url: str, simulator: Simulator, clock: FakeClock
) -> AsyncIterator[tuple[LedgerService, httpx.AsyncClient]]:
    service = await _ledger(nats_url, simulator, clock)
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0, headers=AUTH)
    try:
        yield service, client
    finally:
        await client.aclose()
        await service.stop()


async def test_a_manual_trade_at_the_broker_is_drift_within_one_period_and_its_fill_is_outside(
    bus: Bus,
    simulator: Simulator,
    clock: FakeClock,
    started: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = started
    linked = await _link(bus, simulator, "manual")
    await eventually(lambda: len(_accounts(service)) == 1)
    fill_ids = await _manual_trade(simulator, linked.account_id, "Buy", 2)
    reconciler = _reconciler(service)
    assert reconciler.rounds == 0

    await clock.advance(PERIOD_S)  # one period

    # an account's outcome is stored as it is known; the round is counted when all are
    await eventually(lambda: reconciler.rounds == 1, what="the first reconciliation round")
    outcome = reconciler.latest[linked.account_id]
    assert outcome.status == "drift", outcome
    (row,) = outcome.contracts
    assert (row.symbol, row.ledger_net_pos, row.broker_net_pos, row.fetched_net_pos) == (
        "MNQZ6",
        0,
        2,
        2,
    )
    assert outcome.explained
    assert outcome.fetched_fills == len(fill_ids)
    (event,) = await eventually(lambda: _drift_events(bus, linked.account_id))
    assert event.account_id == linked.account_id
    assert event.login_id == linked.login_id
    assert [(r.ledger_net_pos, r.broker_net_pos) for r in event.contracts] == [(0, 2)]
    assert event.explained
    assert not event.reduced

    async def recorded() -> list[dict[str, Any]]:
        page = (await client.get("/admin/fills", params={"account_id": linked.account_id})).json()
        fills: list[dict[str, Any]] = page["fills"]
        return fills if len(fills) == len(fill_ids) else []

    fills = await eventually(recorded, what="the fetched fill in the ledger")
    assert sorted(f["fill_id"] for f in fills) == sorted(fill_ids)
    assert {(f["strategy_id"], f["leg"], f["action"]) for f in fills} == {
        ("outside", "outside", "Buy")
    }
    position = (await client.get(f"/positions/{linked.account_id}")).json()["positions"][0]
    assert position["net_pos"] == 2

    drift = (await client.get("/admin/drift")).json()["reconciliations"]
    assert [(d["account_id"], d["status"]) for d in drift] == [(linked.account_id, "drift")]
    assert drift[0]["contracts"][0]["broker_net_pos"] == 2

    await clock.advance(PERIOD_S)  # the next period: the recorded fill closes the gap
    await eventually(lambda: reconciler.rounds == 2)
    assert reconciler.latest[linked.account_id].status == "ok"
    assert len(await _drift_events(bus, linked.account_id)) == 1


async def test_a_failed_broker_report_is_unknown_and_the_position_is_not_taken_as_flat(
    bus: Bus,
    simulator: Simulator,
    started: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = started
    linked = await _link(bus, simulator, "faulty")
    no_token = await _link(bus, simulator, "tokenless", token=False)
    await eventually(lambda: len(_accounts(service)) == 2)
    await _manual_trade(simulator, linked.account_id, "Sell", 1)
    first = (await client.post("/admin/reconcile", params={"account_id": linked.account_id})).json()
    assert first["reconciliations"][0]["status"] == "drift"  # the manual sell, now recorded
    await eventually(lambda: _reconciler(service).latest and _net(service, linked.account_id) == -1)

    async with httpx.AsyncClient(timeout=10.0) as sim_admin:
        fault = {
            "userId": linked.user_id,
            "errorStatus": 503,
            "errorCount": 10,
            "endpoints": ["position/deps"],
        }
        assert (await sim_admin.post(simulator.url + "/admin/faults", json=fault)).is_success

    answer = (await client.post("/admin/reconcile")).json()["reconciliations"]
    by_account = {r["account_id"]: r for r in answer}
    failed = by_account[linked.account_id]
    assert failed["status"] == "unknown"
    assert failed["contracts"] == []
    assert "position/deps" in failed["reason"]
    tokenless = by_account[no_token.account_id]
    assert tokenless["status"] == "unknown"
    assert "no access token" in tokenless["reason"]
    assert _net(service, linked.account_id) == -1  # the book is not flattened by a missing report
    assert len(await _drift_events(bus, linked.account_id)) == 1  # only the manual trade's
    assert await _drift_events(bus, no_token.account_id) == []
    drift = (await client.get("/admin/drift", params={"status": "unknown"})).json()
    assert {r["account_id"] for r in drift["reconciliations"]} == {
        linked.account_id,
        no_token.account_id,
    }
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/admin/drift", "/admin/reconcile", "/admin/unrealized"} <= set(paths)
    assert (
        await client.get("/admin/drift", headers={"Authorization": "Bearer no"})
    ).status_code == 401
    metrics = (await client.get("/metrics")).text
    assert 'phalanx_ledger_reconciled_accounts{status="unknown"} 2.0' in metrics
    assert "phalanx_ledger_drift_reports_total 1.0" in metrics


async def test_books_that_agree_are_ok_and_phalanx_fills_are_not_fetched_again(
    bus: Bus,
    simulator: Simulator,
    started: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = started
    linked = await _link(bus, simulator, "agree")
    await eventually(lambda: len(_accounts(service)) == 1)
    # An order as the executor sends it, and the events the executor publishes for it.
    order_id, fills = await _place_as_phalanx(simulator, linked, "Buy", 3)
    accepted = OrderAccepted(
        event_id=f"accepted-{order_id}",
        ts_event=1,
        ts_init=1,
        intent_id="sig-agree-1",
        signal_id="sig-agree",
        strategy_id="trend",
        account_id=linked.account_id,
        login_id=linked.login_id,
        symbol="MNQZ6",
        order_id=order_id,
    )
    await bus.publish(subjects.orders_subject(linked.account_id), accepted)
    for fill in fills:
        await bus.publish(subjects.fills_subject(linked.account_id), fill)
    await eventually(lambda: _net(service, linked.account_id) == 3)

    answer = await client.post(
        "/admin/reconcile", params={"account_id": linked.account_id, "fetch_fills": "true"}
    )
    (outcome,) = answer.json()["reconciliations"]
    assert outcome["status"] == "ok"
    assert outcome["fetched_fills"] == 0
    assert [(c["ledger_net_pos"], c["broker_net_pos"]) for c in outcome["contracts"]] == [(3, 3)]
    assert await _drift_events(bus, linked.account_id) == []
    rows = (await client.get("/admin/fills", params={"account_id": linked.account_id})).json()
    assert {f["strategy_id"] for f in rows["fills"]} == {"trend"}


async def test_an_unexplained_drift_switches_the_account_to_reducing_but_never_relaxes_halted(
    nats_url: str, bus: Bus, simulator: Simulator, clock: FakeClock
) -> None:
    service = await _ledger(nats_url, simulator, clock, reduce_on_drift=True)
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0, headers=AUTH)
    try:
        active = await _link(bus, simulator, "phantom")
        halted = await _link(bus, simulator, "halted")
        states = await bus.key_value(subjects.Buckets.TRADING_STATE)
        halt = TradingStateRecord(scope=f"account.{halted.account_id}", state="HALTED")
        await states.put(halt.scope, encode(halt))
        await eventually(lambda: len(_accounts(service)) == 2)
        # The ledger holds fills the broker never made: no fetched fill can explain that.
        for n, account in enumerate((active, halted)):
            await bus.publish(
                subjects.fills_subject(account.account_id),
                _phantom(900_000 + n, account, simulator),
            )
        await eventually(
            lambda: _net(service, active.account_id) == 1 and _net(service, halted.account_id) == 1
        )

        answer = (await client.post("/admin/reconcile")).json()["reconciliations"]

        assert {(r["status"], r["explained"]) for r in answer} == {("drift", False)}
        entry = await states.get(f"account.{active.account_id}")
        assert entry.value is not None
        assert decode(entry.value, TradingStateRecord).state == "REDUCING"
        kept = await states.get(halt.scope)
        assert kept.value is not None
        assert decode(kept.value, TradingStateRecord).state == "HALTED"
        (reduced,) = await _drift_events(bus, active.account_id)
        assert reduced.reduced
        assert [(r.ledger_net_pos, r.broker_net_pos) for r in reduced.contracts] == [(1, 0)]
        (not_reduced,) = await _drift_events(bus, halted.account_id)
        assert not not_reduced.reduced
        changed = await bus.js.get_last_msg(subjects.CONTROL.name, subjects.CONTROL_STATE)
        assert changed.data is not None
        event = decode_event(changed.data)
        assert isinstance(event, TradingStateChanged)
        assert (event.scope, event.state) == (f"account.{active.account_id}", "REDUCING")
    finally:
        await client.aclose()
        await service.stop()


async def test_the_venues_fees_of_every_fill_are_recorded_and_net_the_pnl(
    bus: Bus,
    simulator: Simulator,
    started: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = started
    linked = await _link(bus, simulator, "fees")
    await eventually(lambda: len(_accounts(service)) == 1)
    async with httpx.AsyncClient(timeout=10.0) as sim_admin:
        rates = {"product": "MNQ", "commission": 0.5, "exchangeFee": 0.25}
        assert (await sim_admin.put(simulator.url + "/admin/fees", json=rates)).is_success
    bought = await _manual_trade(simulator, linked.account_id, "Buy", 2)
    simulator.set_price("MNQZ6", 21010.0)
    sold = await _manual_trade(simulator, linked.account_id, "Sell", 2)

    flat = (await client.post("/admin/reconcile")).json()["reconciliations"][0]
    assert (flat["status"], flat["fetched_fills"]) == ("ok", 0)  # netted: both books flat
    # asked to, it fetches and records the two manual fills...
    fetched = await client.post("/admin/reconcile", params={"fetch_fills": "true"})
    assert fetched.json()["reconciliations"][0]["fetched_fills"] == 2, fetched.text
    await eventually(lambda: all(service.projection.knows_fill(f) for f in bought + sold))
    await client.post("/admin/reconcile")  # ...and their fees (this round or the one before)

    async def fees_known() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (
            await client.get("/admin/fills", params={"account_id": linked.account_id})
        ).json()["fills"]
        return rows if all(r["fees_money"] is not None for r in rows) else []

    rows = await eventually(fees_known, what="fees of both fills")
    assert {r["fill_id"]: Decimal(r["fees_money"]) for r in rows} == {
        bought[0]: Decimal("1.50"),  # 2 contracts * (0.50 + 0.25)
        sold[0]: Decimal("1.50"),
    }
    (pnl,) = (await client.get("/admin/pnl", params={"by": "strategy"})).json()["rows"]
    realized = Decimal(pnl["realized_pnl_money"])
    assert pnl["key"] == "outside"
    assert pnl["fills_without_fees"] == 0
    assert Decimal(pnl["fees_money"]) == Decimal("3.00")
    assert Decimal(pnl["net_pnl_money"]) == realized - Decimal("3.00")
    cash = simulator.state.books[linked.account_id].cash
    assert Decimal(str(cash.realizedPnL)) - Decimal(pnl["fees_money"]) == Decimal(
        pnl["net_pnl_money"]
    )


async def test_unrealized_pnl_follows_the_simulators_price_through_its_fills(
    bus: Bus,
    simulator: Simulator,
    started: tuple[LedgerService, httpx.AsyncClient],
) -> None:
    service, client = started
    holder = await _link(bus, simulator, "holder")
    trader = await _link(bus, simulator, "trader")
    await eventually(lambda: len(_accounts(service)) == 2)
    simulator.set_price("MNQZ6", 21000.0)
    await _manual_trade(simulator, holder.account_id, "Buy", 2)  # long 2 at 21000
    simulator.set_price("MNQZ6", 21012.5)  # the feed moves...
    await _manual_trade(simulator, trader.account_id, "Sell", 1)  # ...and a fill happens there
    await client.post("/admin/reconcile")
    await eventually(lambda: _net(service, holder.account_id) == 2)
    await eventually(lambda: _net(service, trader.account_id) == -1)

    rows = (await client.get("/admin/unrealized/positions")).json()["positions"]
    by_account = {r["account_id"]: r for r in rows}
    held = by_account[holder.account_id]
    assert Decimal(held["mark_price"]) == Decimal("21012.5")
    assert Decimal(held["unrealized_pnl"]) == Decimal("25.0")  # 2 * 12.5 points
    assert Decimal(held["unrealized_pnl_money"]) == Decimal("50.0")  # * $2
    assert held["strategy_id"] == "outside"
    assert Decimal(by_account[trader.account_id]["unrealized_pnl"]) == 0
    totals = (await client.get("/admin/unrealized", params={"by": "strategy"})).json()["rows"]
    assert [(t["key"], Decimal(t["unrealized_pnl_money"]), t["positions"]) for t in totals] == [
        ("outside", Decimal("50.0"), 2)
    ]


async def test_a_missing_fill_younger_than_the_grace_is_left_to_the_executor_for_a_period(
    nats_url: str, bus: Bus, simulator: Simulator
) -> None:
    started_ns = time.time_ns()
    clock = FakeClock(start_ns=started_ns)  # venue fills carry the real time
    service = await _ledger(nats_url, simulator, clock, reconcile_fill_grace_s=30.0)
    client = httpx.AsyncClient(base_url=service.url, timeout=10.0, headers=AUTH)
    try:
        linked = await _link(bus, simulator, "young")
        await eventually(lambda: len(_accounts(service)) == 1)
        (fill_id,) = await _manual_trade(simulator, linked.account_id, "Buy", 1)

        (early,) = (await client.post("/admin/reconcile")).json()["reconciliations"]
        assert early["status"] == "unknown"
        assert "recent fill" in early["reason"]
        assert not service.projection.knows_fill(fill_id)
        assert await _drift_events(bus, linked.account_id) == []

        # past the grace of the fill, made some real seconds after the fake clock's start
        await clock.advance(31.0 + (time.time_ns() - started_ns) / 1e9)
        (later,) = (await client.post("/admin/reconcile")).json()["reconciliations"]
        assert (later["status"], later["explained"], later["fetched_fills"]) == ("drift", True, 1)
        await eventually(lambda: service.projection.knows_fill(fill_id))
    finally:
        await client.aclose()
        await service.stop()


# -- helpers ---------------------------------------------------------------------------------


def _reconciler(service: LedgerService) -> Reconciler:
    assert service.broker_check is not None
    return service.broker_check.reconciler


def _accounts(service: LedgerService) -> list[AccountRecord]:
    return _reconciler(service).active_accounts()


def _net(service: LedgerService, account_id: int) -> int:
    return sum(p.net_pos for p in service.projection.positions(account_id))


def _phantom(fill_id: int, account: Linked, sim: Simulator) -> FillReceived:
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1e9)
    return FillReceived(
        event_id=f"phantom-{fill_id}",
        ts_event=now,
        ts_init=now,
        fill_id=fill_id,
        order_id=fill_id + 1,
        account_id=account.account_id,
        contract_id=_mnq(sim),
        symbol="MNQZ6",
        action="Buy",
        qty=1,
        price=Decimal("21000"),
    )


def _mnq(sim: Simulator) -> int:
    info = sim.venue.contracts.resolve("MNQZ6")
    assert info is not None
    return info.contract.id


async def _place_as_phalanx(
    sim: Simulator, linked: Linked, action: str, qty: int
) -> tuple[int, list[FillReceived]]:
    """Place a Market order over REST with the login's own token, as the executor would."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        login = await client.post(
            sim.rest_url + "/auth/accesstokenrequest",
            json=login_body(linked.login_id.removeprefix("login-"), "pw-agree"),
        )
        token = login.json()["accessToken"]
        placed = await client.post(
            sim.rest_url + "/order/placeorder",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "accountId": linked.account_id,
                "accountSpec": linked.account_spec,
                "action": action,
                "symbol": "MNQZ6",
                "orderQty": qty,
                "orderType": "Market",
                "isAutomated": True,
                "clOrdId": "sig-agree-1",
            },
        )
    assert "orderId" in placed.json(), placed.text
    order_id = int(placed.json()["orderId"])
    record = sim.state.orders[order_id]
    fills = [
        FillReceived(
            event_id=f"fill-{f.id}",
            ts_event=1_000 + f.id,
            ts_init=1_000 + f.id,
            fill_id=f.id,
            order_id=order_id,
            account_id=linked.account_id,
            contract_id=f.contractId,
            symbol=record.info.contract.name,
            action="Buy" if f.action == "Buy" else "Sell",
            qty=f.qty,
            price=Decimal(str(f.price)),
        )
        for f in record.fills
    ]
    return order_id, fills
