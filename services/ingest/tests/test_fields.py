"""The rest of TradersPost's fields and codes, explicit ids, freshness, and internal errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_ingest.service import IngestService
from phalanx_ingest.webhook import derive_signal_id

pytestmark = pytest.mark.integration

_SIGNAL = {"ticker": "MNQ1!", "action": "buy"}

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("placeholder ticker", {**_SIGNAL, "ticker": "{{ticker}}"}, "ticker-does-not-exist"),
    ("ticker with spaces", {**_SIGNAL, "ticker": "MNQ Z2025"}, "ticker-does-not-exist"),
    ("unknown quantity type", {**_SIGNAL, "quantity": 1, "quantityType": "lots"},
     "invalid-quantity-type"),
    ("quantity type on cancel", {**_SIGNAL, "action": "cancel", "quantity": 1,
                                 "quantityType": "fixed_quantity"},
     "invalid-quantity-type-action"),
    ("quantity type without quantity", {**_SIGNAL, "quantityType": "fixed_quantity"},
     "quantity-type-requires-quantity"),
    ("risk sizing on exit", {**_SIGNAL, "action": "exit", "quantity": 100,
                             "quantityType": "risk_dollar_amount"},
     "invalid-risk-dollar-amount-action"),
    ("percent of position on buy", {**_SIGNAL, "quantity": 50,
                                    "quantityType": "percent_of_position"},
     "invalid-percent-of-position-action"),
    ("percent of position over 100", {**_SIGNAL, "action": "exit", "quantity": 150,
                                      "quantityType": "percent_of_position"},
     "invalid-quantity"),
    ("dollar sizing on futures", {**_SIGNAL, "quantity": 1000, "quantityType": "dollar_amount"},
     "invalid-quantity-type-for-asset-class"),
    ("unknown time in force", {**_SIGNAL, "timeInForce": "forever"}, "invalid-time-in-force"),
    ("trailing stop without trail", {**_SIGNAL, "orderType": "trailing_stop"},
     "invalid-trailing-stop"),
    ("trailing stop with both", {**_SIGNAL, "orderType": "trailing_stop", "trailAmount": 5,
                                 "trailPercent": 1}, "invalid-trailing-stop"),
    ("trailing stop negative", {**_SIGNAL, "orderType": "trailing_stop", "trailAmount": -5},
     "invalid-trailing-stop"),
    ("trail on a market order", {**_SIGNAL, "trailAmount": 5}, "invalid-trailing-stop"),
    ("stop limit without its stop", {**_SIGNAL, "stopLoss": {"type": "stop_limit",
                                                             "limitPrice": 21390}},
     "invalid-stop-loss-stop-price-required"),
    ("unparsable expiresAt", {**_SIGNAL, "expiresAt": "tomorrow"}, "invalid-expires-at"),
    ("expired expiresAt", {**_SIGNAL, "expiresAt": "2020-01-01T00:00:00Z"},
     "invalid-expires-at"),
    ("unknown cancelOrderType", {**_SIGNAL, "action": "cancel", "cancelOrderType": "bracket"},
     "invalid-order-type"),
    ("cancel not a boolean", {**_SIGNAL, "cancel": "maybe"}, "invalid-payload"),
    ("negative delay", {**_SIGNAL, "delay": -1}, "invalid-payload"),
    ("delay over an hour", {**_SIGNAL, "delay": 3601}, "invalid-payload"),
    ("id not text", {**_SIGNAL, "id": {"a": 1}}, "invalid-payload"),
    ("id too long", {**_SIGNAL, "id": "x" * 129}, "invalid-payload"),
    ("ignoreTradingWindows not a boolean", {**_SIGNAL, "ignoreTradingWindows": 3},
     "invalid-payload"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
async def test_invalid_field_is_400_with_the_traderspost_message_code(
    client: httpx.AsyncClient, bus: Bus, hook: str, body: dict[str, Any], code: str
) -> None:
    response = await client.post(hook, content=json.dumps(body).encode())

    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer == {"success": False, "messageCode": code, "message": answer["message"]}
    assert answer["message"].endswith(".")
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 0


async def test_every_traderspost_entry_field_is_carried_to_the_signal(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    body = {
        "ticker": "MNQ1!",
        "action": "buy",
        "quantity": 2,
        "orderType": "trailing_stop",
        "trailPercent": "0.25",
        "price": 21000,
        "timeInForce": "GTC",
        "cancel": "true",
        "cancelOrderType": "stop",
        "delay": 1.5,
        "ignoreTradingWindows": True,
        "expiresAt": "2999-01-01T00:00:00Z",
        "extendedHours": True,
        "optionType": "call",
    }

    response = await client.post(hook, json=body)

    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert payload["trailPercent"] == 0.25
    assert payload["timeInForce"] == "gtc"
    assert payload["cancel"] is True
    assert payload["cancelOrderType"] == "stop"
    assert payload["delay"] == 1.5
    assert payload["ignoreTradingWindows"] is True
    assert "extendedHours" not in payload
    assert "optionType" not in payload
    stored = await bus.js.get_last_msg(
        subjects.SIGNALS.name, subjects.signals_subject(strategy["strategy_id"])
    )
    assert stored.data is not None
    event = decode_event(stored.data)
    assert isinstance(event, SignalReceived)
    assert event.signal.time_in_force == "gtc"
    assert str(event.signal.trail_percent) == "0.25"
    assert str(event.signal.delay_s) == "1.5"


async def test_a_percent_of_position_exit_is_carried_to_the_signal(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    body = {"ticker": "MNQ1!", "action": "exit", "quantity": 50,
            "quantityType": "percent_of_position"}  # fmt: skip

    response = await client.post(hook, json=body)

    assert response.status_code == 200, response.text
    assert response.json()["payload"]["quantityType"] == "percent_of_position"
    stored = await bus.js.get_last_msg(
        subjects.SIGNALS.name, subjects.signals_subject(strategy["strategy_id"])
    )
    assert stored.data is not None
    event = decode_event(stored.data)
    assert isinstance(event, SignalReceived)
    assert event.signal.quantity_type == "percent_of_position"
    assert event.signal.quantity == 50


async def test_an_explicit_id_makes_the_signal_id_and_recognises_a_resend(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    first = await client.post(hook, json={**_SIGNAL, "id": "alert-7", "time": "t1"})
    # The same alert id with a different body (another timestamp): the same signal.
    again = await client.post(hook, json={**_SIGNAL, "id": "alert-7", "time": "t2"})
    other = await client.post(hook, json={**_SIGNAL, "id": "alert-8", "time": "t1"})

    assert first.json()["id"] == derive_signal_id(strategy["strategy_id"], b"", "alert-7")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 2


async def test_the_same_explicit_id_on_two_strategies_is_two_signals(
    client: httpx.AsyncClient, make_strategy: Any, hook: str
) -> None:
    other = await make_strategy(name="other")
    other_hook = f"/webhooks/{other['strategy_id']}/{other['secret']}"

    first = await client.post(hook, json={**_SIGNAL, "id": "a"})
    second = await client.post(other_hook, json={**_SIGNAL, "id": "a"})

    assert first.json()["id"] != second.json()["id"]
    assert "duplicate" not in second.json()


async def test_freshness_window_refuses_old_and_timeless_signals(
    client: httpx.AsyncClient, admin_headers: dict[str, str], strategy: dict[str, Any], hook: str
) -> None:
    patched = await client.patch(
        f"/admin/strategies/{strategy['strategy_id']}",
        json={"max_signal_age_s": 60},
        headers=admin_headers,
    )
    assert patched.status_code == 200
    assert patched.json()["max_signal_age_s"] == 60

    old = await client.post(hook, json={**_SIGNAL, "time": "2020-01-01T00:00:00Z"})
    timeless = await client.post(hook, json=_SIGNAL)
    future = await client.post(hook, json={**_SIGNAL, "time": "2999-01-01T00:00:00Z"})
    garbage = await client.post(hook, json={**_SIGNAL, "time": "{{timenow}}"})
    fresh = await client.post(hook, json={**_SIGNAL, "time": _now_iso()})
    epoch_ms = await client.post(hook, json={**_SIGNAL, "time": _now_ms(), "id": "ms"})

    assert old.status_code == 400
    assert old.json()["messageCode"] == "signal-too-old"
    assert timeless.json()["messageCode"] == "invalid-time"
    assert future.json()["messageCode"] == "invalid-time"
    assert garbage.json()["messageCode"] == "invalid-time"
    assert fresh.status_code == 200, fresh.text
    assert epoch_ms.status_code == 200, epoch_ms.text


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


async def test_an_unexpected_error_is_500_internal_error_without_internals(
    ingest: IngestService, client: httpx.AsyncClient, hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("secret internals at /srv/phalanx nats://10.0.0.1")

    assert ingest.publisher is not None
    monkeypatch.setattr(ingest.publisher, "publish", broken)

    response = await client.post(hook, json=_SIGNAL)

    assert response.status_code == 500
    assert response.json()["messageCode"] == "internal-error"
    assert "internals" not in response.text
    assert "nats://" not in response.text
