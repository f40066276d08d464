"""The door of the signal contract (ADR-0045): repeats versus resends, quantities and prices
on a sane scale, relative brackets need a price, fields an exit cannot honour are refused, and
every stored signal carries its deadline and the strategy's maximum."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_testing.clock import FakeClock

ADMIN_TOKEN = "contract-admin-token"
_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def ingest_settings(nats_url: str, outbox_dir: Path) -> IngestSettings:
    return IngestSettings(
        nats_url=nats_url,
        ingest_port=0,
        admin_token=ADMIN_TOKEN,
        publish_timeout_s=2.0,
        ingest_outbox_dir=str(outbox_dir),
    )


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def timed_ingest(
    nats_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[IngestService]:
    service = await build_ingest(ingest_settings(nats_url, tmp_path / "outbox"), clock)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


@pytest_asyncio.fixture
async def http(timed_ingest: IngestService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=timed_ingest.url, timeout=10.0) as client:
        yield client


async def _strategy(http: httpx.AsyncClient, **settings: Any) -> str:
    created = await http.post("/admin/strategies", json={"name": "s", **settings}, headers=_AUTH)
    assert created.status_code == 201, created.text
    body = created.json()
    return f"/webhooks/{body['strategy_id']}/{body['secret']}"


async def _stored(bus: Bus, hook: str) -> SignalReceived:
    strategy_id = hook.split("/")[2]
    msg = await bus.js.get_last_msg(subjects.SIGNALS.name, subjects.signals_subject(strategy_id))
    assert msg.data is not None
    event = decode_event(msg.data)
    assert isinstance(event, SignalReceived)
    return event


_EXIT = {"ticker": "MNQ1!", "action": "exit"}


async def test_a_static_body_is_a_duplicate_inside_the_window_and_a_new_signal_after(
    http: httpx.AsyncClient, bus: Bus, clock: FakeClock
) -> None:
    hook = await _strategy(http)

    first = await http.post(hook, json=_EXIT)
    await clock.advance(2)
    resend = await http.post(hook, json=_EXIT)
    await clock.advance(4)  # 6 s after the first: past the default 5 s window
    repeat = await http.post(hook, json=_EXIT)
    await clock.advance(1)
    resend_of_repeat = await http.post(hook, json=_EXIT)

    assert first.status_code == resend.status_code == repeat.status_code == 200
    assert resend.json()["duplicate"] is True
    assert resend.json()["id"] == first.json()["id"]
    assert "duplicate" not in repeat.json()
    assert repeat.json()["id"] != first.json()["id"]
    assert resend_of_repeat.json()["id"] == repeat.json()["id"]
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 2


async def test_the_repeat_window_is_a_strategy_setting(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    hook = await _strategy(http, repeat_window_s=60)

    first = await http.post(hook, json=_EXIT)
    await clock.advance(30)
    again = await http.post(hook, json=_EXIT)

    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True


async def test_an_explicit_id_dedupes_beyond_the_repeat_window(
    http: httpx.AsyncClient, clock: FakeClock
) -> None:
    hook = await _strategy(http)

    first = await http.post(hook, json={**_EXIT, "id": "exit-1"})
    await clock.advance(3600)
    again = await http.post(hook, json={**_EXIT, "id": "exit-1"})

    assert again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True


async def test_two_ingest_replicas_agree_on_a_resend(
    nats_url: str, tmp_path: Path, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    hook = await _strategy(http)
    other = await build_ingest(ingest_settings(nats_url, tmp_path / "other-outbox"), clock)
    await other.start()
    try:
        async with httpx.AsyncClient(base_url=other.url, timeout=10.0) as second:
            first = await http.post(hook, json=_EXIT)
            resend = await second.post(hook, json=_EXIT)
    finally:
        await other.stop()

    assert resend.json()["id"] == first.json()["id"]
    assert resend.json()["duplicate"] is True


QUANTITY_REFUSALS = [
    ("1e999999999", '"1e999999999"', "invalid-quantity"),
    ("1e308", "1e308", "invalid-quantity"),
    ("above the strategy maximum", "101", "invalid-quantity"),
    ("fractional contracts", "1.5", "invalid-quantity"),
    ("tiny", "1e-30", "invalid-quantity"),
]


@pytest.mark.parametrize(
    "raw", [q for _, q, _ in QUANTITY_REFUSALS], ids=[n for n, _, _ in QUANTITY_REFUSALS]
)
async def test_absurd_quantities_are_refused_and_nothing_is_stored(
    http: httpx.AsyncClient, bus: Bus, raw: str
) -> None:
    hook = await _strategy(http)
    body = '{"ticker": "MNQ1!", "action": "buy", "quantity": ' + raw + "}"

    response = await http.post(hook, content=body.encode())

    assert response.status_code == 400, response.text
    assert response.json()["messageCode"] == "invalid-quantity"
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 0


async def test_the_maximum_quantity_is_a_visible_strategy_setting(
    http: httpx.AsyncClient, bus: Bus
) -> None:
    hook = await _strategy(http, max_quantity=500)
    strategy_id = hook.split("/")[2]

    view = await http.get(f"/admin/strategies/{strategy_id}", headers=_AUTH)
    accepted = await http.post(hook, json={"ticker": "MNQ1!", "action": "buy", "quantity": 400})
    refused = await http.post(hook, json={"ticker": "MNQ1!", "action": "buy", "quantity": 501})

    assert view.json()["max_quantity"] == 500
    assert accepted.status_code == 200, accepted.text
    assert (await _stored(bus, hook)).max_quantity == 500
    assert refused.status_code == 400
    assert "500" in refused.json()["message"]


async def test_the_defaults_show_in_the_strategy_view(http: httpx.AsyncClient) -> None:
    hook = await _strategy(http)

    view = (await http.get(f"/admin/strategies/{hook.split('/')[2]}", headers=_AUTH)).json()

    assert view["max_quantity"] == 100
    assert view["repeat_window_s"] == 5.0
    assert view["max_entry_age_s"] == 60.0
    assert view["max_exit_age_s"] == 300.0


DOOR_REFUSALS = [
    ("relative take-profit without a price",
     {"ticker": "MNQ1!", "action": "buy", "takeProfit": {"amount": 20}},
     "invalid-take-profit-value-required"),
    ("relative stop-loss without a price",
     {"ticker": "MNQ1!", "action": "buy", "stopLoss": {"percent": 1}},
     "invalid-stop-loss-stop-price-required"),
    ("trailing stop entry without a price",
     {"ticker": "MNQ1!", "action": "buy", "orderType": "trailing_stop", "trailAmount": 5},
     "invalid-trailing-stop"),
    ("limit entry without limitPrice",
     {"ticker": "MNQ1!", "action": "buy", "orderType": "limit"}, "invalid-order-type"),
    ("stop_limit entry without stopPrice",
     {"ticker": "MNQ1!", "action": "buy", "orderType": "stop_limit", "limitPrice": 21000},
     "invalid-order-type"),
    ("stop_limit stop-loss without its limit",
     {"ticker": "MNQ1!", "action": "buy", "stopLoss": {"type": "stop_limit", "stopPrice": 20900}},
     "invalid-stop-loss-limit-price"),
    ("add with a relative take-profit",
     {"ticker": "MNQ1!", "action": "add", "price": 21000, "takeProfit": {"amount": 20}},
     "invalid-payload"),
    ("timeInForce opg", {"ticker": "MNQ1!", "action": "buy", "timeInForce": "opg"},
     "invalid-time-in-force"),
    ("exit with a take-profit",
     {"ticker": "MNQ1!", "action": "exit", "takeProfit": {"limitPrice": 21000}},
     "invalid-payload"),
    ("flat with a limit order",
     {"ticker": "MNQ1!", "action": "sell", "sentiment": "flat", "orderType": "limit",
      "limitPrice": 21000}, "invalid-payload"),
    ("cancel with a quantity", {"ticker": "MNQ1!", "action": "cancel", "quantity": 1},
     "invalid-quantity"),
    ("price on no sane scale", {"ticker": "MNQ1!", "action": "buy", "price": 1e300},
     "invalid-payload"),
    ("stop-loss of 100 percent",
     {"ticker": "MNQ1!", "action": "buy", "price": 21000, "stopLoss": {"percent": 100}},
     "invalid-stop-loss-percent"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in DOOR_REFUSALS], ids=[n for n, _, _ in DOOR_REFUSALS]
)
async def test_what_planning_could_not_honour_is_refused_at_the_door(
    http: httpx.AsyncClient, bus: Bus, body: dict[str, Any], code: str
) -> None:
    hook = await _strategy(http)

    response = await http.post(hook, content=json.dumps(body).encode())

    assert response.status_code == 400, response.text
    assert response.json()["messageCode"] == code
    assert response.json()["message"].endswith(".")
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 0


async def test_every_stored_signal_carries_its_deadline(
    http: httpx.AsyncClient, bus: Bus, clock: FakeClock
) -> None:
    hook = await _strategy(http, max_entry_age_s=20, max_exit_age_s=90)
    now = clock.time_ns()

    await http.post(hook, json={"ticker": "MNQ1!", "action": "buy"})
    entry = await _stored(bus, hook)
    await http.post(hook, json={"ticker": "MNQ1!", "action": "buy", "delay": 10, "time": "x"})
    delayed = await _stored(bus, hook)
    await http.post(hook, json=_EXIT)
    exit_ = await _stored(bus, hook)
    await http.post(hook, json={"ticker": "MNQ1!", "action": "sell", "sentiment": "flat"})
    flat = await _stored(bus, hook)
    soon = "2026-01-01T00:00:05Z"  # FakeClock starts at 2026-01-01T00:00:00Z
    await http.post(hook, json={"ticker": "MNQ1!", "action": "buy", "expiresAt": soon})
    expiring = await _stored(bus, hook)

    assert entry.ts_event == now
    assert entry.not_after_ns == now + 20 * 10**9
    assert delayed.not_after_ns == now + 30 * 10**9
    assert exit_.not_after_ns == now + 90 * 10**9
    assert flat.not_after_ns == now + 90 * 10**9
    assert expiring.not_after_ns == now + 5 * 10**9


TICKERS = [
    ("continuous, front month on 2026-01-01", "MNQ1!", "MNQH6"),
    ("continuous, the month after", "MNQ2!", "MNQM6"),
    ("four-digit year", "MNQZ2026", "MNQZ6"),
    ("two-digit year", "MNQZ26", "MNQZ6"),
    ("exchange prefix", "CME_MINI:MNQZ2026", "MNQZ6"),
    ("crude, monthly", "CL1!", "CLG6"),
]


@pytest.mark.parametrize(
    ("ticker", "contract"), [(t, c) for _, t, c in TICKERS], ids=[n for n, _, _ in TICKERS]
)
async def test_tickers_are_resolved_at_the_door_and_the_contract_is_pinned(
    http: httpx.AsyncClient, bus: Bus, ticker: str, contract: str
) -> None:
    hook = await _strategy(http)

    response = await http.post(hook, json={"ticker": ticker, "action": "buy"})

    assert response.status_code == 200, response.text
    assert (await _stored(bus, hook)).contract == contract


@pytest.mark.parametrize("ticker", ["FOO1!", "MNQZ2025", "ESF2026", "MNQ9!"])
async def test_unknown_expired_or_unlisted_tickers_are_refused_at_the_door(
    http: httpx.AsyncClient, bus: Bus, ticker: str
) -> None:
    hook = await _strategy(http)

    response = await http.post(hook, json={"ticker": ticker, "action": "buy"})

    assert response.status_code == 400, response.text
    assert response.json()["messageCode"] == "ticker-does-not-exist"
    assert response.json()["message"].endswith(".")
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 0
