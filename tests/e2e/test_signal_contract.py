"""The signal contract through every real service: each finding that once made a 2xx trade
nothing or the wrong thing, as a regression test that follows the signal to the venue."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import SeededStrategy, demo_payload, front_month, seed
from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.contracts import MONTH_CODES, ContractBook
from phalanx_common.events import Signal, SignalReceived
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(180)]

EXIT = {"ticker": "MNQ1!", "action": "exit"}


class Trader:
    """A seeded strategy with 2 logins x 2 accounts, and what the venue and the log say."""

    def __init__(self, system: RunningSystem, seeded: SeededStrategy, http: httpx.AsyncClient):
        self.system = system
        self.seeded = seeded
        self.http = http
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}

    async def send(self, body: dict[str, Any] | bytes) -> httpx.Response:
        if isinstance(body, bytes):
            return await self.http.post(self.seeded.webhook_url, content=body)
        return await self.http.post(self.seeded.webhook_url, json=body)

    async def strategy(self, **settings: Any) -> None:
        resp = await self.http.patch(
            f"{self.system.endpoints.ingest}/admin/strategies/{self.seeded.strategy_id}",
            json=settings,
            headers=self.admin,
        )
        resp.raise_for_status()

    def positions(self) -> dict[int, int]:
        """Net position of every seeded account at the venue."""
        books = self.system.sim.state.books
        return {
            a: sum(int(p.netPos) for p in books[a].positions.values()) if a in books else 0
            for a in self.seeded.account_ids
        }

    def venue_orders(self) -> int:
        books = self.system.sim.state.books
        return sum(len(books[a].orders) for a in self.seeded.account_ids if a in books)

    async def outcome(self, signal_id: str) -> dict[str, Any]:
        """The signal log's entry once every account has its outcome."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"

        async def done() -> dict[str, Any] | None:
            resp = await self.http.get(url, headers=self.admin)
            if resp.status_code != 200:
                return None
            entry: dict[str, Any] = resp.json()
            finished = [a for a in entry["accounts"] if a["outcome"] != "pending"]
            enough = len(finished) == len(self.seeded.account_ids)
            if entry["status"] == "rejected":  # the planner's verdict: no account was planned
                return entry
            return entry if entry["status"] == "done" and enough else None

        entry = await eventually(done, timeout=30, what=f"every outcome of {signal_id}")
        return dict(entry)

    async def trade(self, body: dict[str, Any], expect: int) -> dict[str, Any]:
        """Send one signal, wait for its outcomes and for every account to hold ``expect``."""
        resp = await self.send(body)
        assert resp.status_code == 200, resp.text
        entry = await self.outcome(resp.json()["id"])
        await eventually(
            lambda: set(self.positions().values()) == {expect},
            timeout=30,
            what=f"every account at {expect}",
        )
        return entry


@pytest.fixture
async def trader(system: RunningSystem) -> Any:
    seeded = await seed(system.endpoints, logins=2, accounts_per_login=2)
    pool = system.executor.pool
    assert pool is not None
    await eventually(lambda: len(pool) == 2, what="executor connected both logins")
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            system.endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": 21000}
        )
        resp.raise_for_status()
        yield Trader(system, seeded, http)


async def test_the_readme_demo_can_be_sent_exited_and_sent_again_trading_each_time(
    trader: Trader,
) -> None:
    await trader.strategy(repeat_window_s=1)

    first = await trader.trade(demo_payload(), expect=1)
    await trader.trade(EXIT, expect=0)
    await asyncio.sleep(1.2)  # past the repeat window of the entry's body
    again = await trader.trade(demo_payload(), expect=1)
    await asyncio.sleep(1.2)
    await trader.trade(EXIT, expect=0)  # the same static exit body trades again too

    assert first["signal_id"] != again["signal_id"]
    assert first["counts"]["placed"] == again["counts"]["placed"] == 4


async def test_a_resend_inside_the_window_is_a_duplicate_and_trades_once(
    trader: Trader,
) -> None:
    first = await trader.send(demo_payload())
    resend = await trader.send(demo_payload())
    await trader.outcome(first.json()["id"])

    assert resend.json()["duplicate"] is True
    assert resend.json()["id"] == first.json()["id"]
    await eventually(lambda: set(trader.positions().values()) == {1}, what="one lot each")
    await asyncio.sleep(0.5)
    assert set(trader.positions().values()) == {1}


async def test_absurd_quantities_are_refused_and_every_later_signal_still_trades(
    trader: Trader,
) -> None:
    overflow = await trader.send(b'{"ticker": "MNQ1!", "action": "buy", "quantity": "1e999999999"}')
    huge = await trader.send(b'{"ticker": "MNQ1!", "action": "buy", "quantity": 1e308}')

    assert overflow.status_code == huge.status_code == 400
    assert overflow.json()["messageCode"] == huge.json()["messageCode"] == "invalid-quantity"
    await trader.trade({**demo_payload(), "quantity": 2}, expect=2)
    assert trader.venue_orders() == 4 * 3  # one bracket (entry + 2 legs) per account, no more


async def test_an_explicit_four_digit_year_contract_trades(trader: Trader) -> None:
    front = ContractBook.load().contract("MNQ1!", dt.datetime.now(dt.UTC).date())
    # e.g. MNQH2027: the explicit-contract form TradersPost documents
    ticker = f"MNQ{MONTH_CODES[front.month - 1]}{front.year}"

    entry = await trader.trade({**demo_payload(), "ticker": ticker}, expect=1)

    assert len(str(front.year)) == 4
    assert entry["counts"]["placed"] == 4


async def test_a_test_signal_trades_nothing_and_says_per_account_what_it_would_do(
    trader: Trader,
) -> None:
    resp = await trader.send({**demo_payload(), "test": True})
    assert resp.status_code == 200
    entry = await trader.outcome(resp.json()["id"])

    assert entry["test"] is True
    assert {a["outcome"] for a in entry["accounts"]} == {"skipped"}
    assert {a["reason"] for a in entry["accounts"]} == {"test-signal"}
    assert all("would buy 1" in a["text"] for a in entry["accounts"])
    assert trader.venue_orders() == 0


async def test_an_old_signal_replayed_after_its_deadline_expires_on_every_account(
    trader: Trader, system: RunningSystem
) -> None:
    # A signal stored an hour ago (as if re-read by a recreated consumer, or replayed after
    # JetStream's duplicate window): planning finds it past its deadline.
    now = dt.datetime.now(dt.UTC)
    received = int((now - dt.timedelta(hours=1)).timestamp() * 1e9)
    signal_id = ids.signal_id_from(trader.seeded.strategy_id, b"an old alert")
    event = SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=received,
        ts_init=received,
        signal_id=signal_id,
        strategy_id=trader.seeded.strategy_id,
        signal=Signal(ticker="MNQ1!", action="buy", quantity=None),
        not_after_ns=received + 60 * 10**9,
    )
    bus = await Bus.connect(system.nats_url, "replay")
    try:
        await bus.publish(
            subjects.signals_subject(trader.seeded.strategy_id), event, msg_id=signal_id
        )
    finally:
        await bus.close()

    entry = await trader.outcome(signal_id)

    assert {a["outcome"] for a in entry["accounts"]} == {"expired"}
    assert trader.venue_orders() == 0
    # ...and the next fresh signal trades as usual.
    await trader.trade(demo_payload(), expect=1)


async def test_a_signal_that_cannot_be_planned_stops_no_later_signal(
    trader: Trader, system: RunningSystem
) -> None:
    # What the door now refuses, written straight to the stream (as an older ingest did):
    # planning it raised decimal.Overflow on every redelivery and held every later signal.
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1e9)
    signal_id = ids.signal_id_from(trader.seeded.strategy_id, b"poison")
    poison = SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=now,
        ts_init=now,
        signal_id=signal_id,
        strategy_id=trader.seeded.strategy_id,
        signal=Signal(ticker="MNQ1!", action="buy", quantity=Decimal("1e999999999")),
    )
    bus = await Bus.connect(system.nats_url, "poison")
    try:
        await bus.publish(
            subjects.signals_subject(trader.seeded.strategy_id), poison, msg_id=signal_id
        )
    finally:
        await bus.close()

    verdict = await trader.outcome(signal_id)
    await trader.trade(demo_payload(), expect=1)

    assert verdict["status"] == "rejected"
    assert verdict["planner_rejected"].startswith("planning-error")
