"""The webhook through real HTTP over a real nats-server: durability, duplicates, refusals."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived
from phalanx_common.ids import signal_id_from

pytestmark = pytest.mark.integration

BODY = (
    b'{"ticker": "MNQ1!", "action": "buy", "sentiment": "long", "quantity": 2,'
    b' "price": 21500.25, "takeProfit": {"amount": 20}, "stopLoss": {"type": "stop",'
    b' "amount": 10.5}, "time": "2025-06-18T14:30:00Z", "interval": "5",'
    b' "extras": {"alert": "ema_cross"}, "someUnknownField": 1}'
)


async def _stream_messages(bus: Bus) -> int:
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    return int(info.state.messages)


async def test_valid_signal_is_durable_in_signals_before_the_200(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    response = await client.post(hook, content=BODY, headers={"Content-Type": "text/plain"})

    assert response.status_code == 200, response.text
    body = response.json()
    # An id-less body: its id is new for this receipt (ADR-0045), 32 characters.
    expected_id = body["id"]
    assert len(expected_id) == 32
    assert expected_id != signal_id_from(strategy["strategy_id"], BODY)
    assert body["success"] is True
    assert body["id"] == expected_id
    assert body["logId"] == expected_id
    assert "duplicate" not in body
    # Read at once, without waiting: the 200 came after JetStream's ack, so it is there.
    stored = await bus.js.get_last_msg(
        subjects.SIGNALS.name, subjects.signals_subject(strategy["strategy_id"])
    )
    assert stored.headers is not None
    assert stored.headers[MSG_ID] == expected_id
    assert stored.data is not None
    event = decode_event(stored.data)
    assert isinstance(event, SignalReceived)
    assert event.signal_id == expected_id
    assert event.strategy_id == strategy["strategy_id"]
    assert str(event.signal.quantity) == "2"
    assert str(event.signal.signal_price) == "21500.25"
    assert event.signal.sentiment == "bullish"
    assert event.signal.take_profit is not None
    assert str(event.signal.take_profit.amount) == "20"
    assert event.signal.stop_loss is not None
    assert str(event.signal.stop_loss.amount) == "10.5"
    assert event.signal.extras == {"alert": "ema_cross"}
    assert await _stream_messages(bus) == 1


async def test_success_echoes_the_normalised_payload_in_traderspost_names(
    client: httpx.AsyncClient, hook: str
) -> None:
    response = await client.post(hook, content=BODY)

    assert response.status_code == 200
    assert response.json()["payload"] == {
        "ticker": "MNQ1!",
        "action": "buy",
        "sentiment": "bullish",
        "quantity": 2,
        "orderType": "market",
        "signalPrice": 21500.25,
        "takeProfit": {"amount": 20},
        "stopLoss": {"type": "stop", "amount": 10.5},
        "time": "2025-06-18T14:30:00Z",
        "interval": "5",
        "extras": {"alert": "ema_cross"},
    }


async def test_a_resent_identical_webhook_is_a_duplicate_and_stored_once(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any], hook: str
) -> None:
    first = await client.post(hook, content=BODY)
    second = await client.post(hook, content=BODY)

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert await _stream_messages(bus) == 1


async def test_a_different_body_is_a_new_signal(
    client: httpx.AsyncClient, bus: Bus, hook: str
) -> None:
    first = await client.post(hook, json={"ticker": "MNQ1!", "action": "buy", "time": "t1"})
    second = await client.post(hook, json={"ticker": "MNQ1!", "action": "buy", "time": "t2"})

    assert first.status_code == second.status_code == 200
    assert first.json()["id"] != second.json()["id"]
    assert "duplicate" not in second.json()
    assert await _stream_messages(bus) == 2


async def test_wrong_secret_is_403_invalid_password_and_stores_nothing(
    client: httpx.AsyncClient, bus: Bus, strategy: dict[str, Any]
) -> None:
    response = await client.post(
        f"/webhooks/{strategy['strategy_id']}/not-the-secret", content=BODY
    )

    assert response.status_code == 403
    body = response.json()
    assert body["success"] is False
    assert body["messageCode"] == "invalid-password"
    assert "secret" in body["message"]
    assert await _stream_messages(bus) == 0


async def test_another_strategys_secret_is_refused(
    client: httpx.AsyncClient, make_strategy: Any, strategy: dict[str, Any]
) -> None:
    other = await make_strategy(name="other")

    response = await client.post(
        f"/webhooks/{strategy['strategy_id']}/{other['secret']}", content=BODY
    )

    assert response.status_code == 403
    assert response.json()["messageCode"] == "invalid-password"


@pytest.mark.parametrize(
    "strategy_id", ["00000000-0000-4000-8000-000000000000", "no.such>strategy", "x" * 300]
)
async def test_unknown_strategy_is_404_not_found(
    client: httpx.AsyncClient, bus: Bus, strategy_id: str
) -> None:
    response = await client.post(f"/webhooks/{strategy_id}/whatever", content=BODY)

    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "messageCode": "not-found",
        "message": response.json()["message"],
    }
    assert "Webhook not found" in response.json()["message"]
    assert await _stream_messages(bus) == 0


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, bus: Bus, hook: str) -> None:
    big = json.dumps({"ticker": "MNQ1!", "action": "buy", "extras": {"x": "y" * 70_000}})

    response = await client.post(hook, content=big)

    assert response.status_code == 413
    assert response.json()["messageCode"] == "payload-too-large"
    assert await _stream_messages(bus) == 0


async def test_body_over_the_limit_without_content_length_is_413(
    client: httpx.AsyncClient, hook: str
) -> None:
    async def chunks() -> Any:
        yield b'{"ticker": "MNQ1!", "action": "buy", "extras": {"x": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}}'

    response = await client.post(hook, content=chunks())

    assert response.status_code == 413
    assert response.json()["messageCode"] == "payload-too-large"


async def test_get_on_the_webhook_is_405_post_required(
    client: httpx.AsyncClient, hook: str
) -> None:
    response = await client.get(hook)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["messageCode"] == "post-required"


_SIGNAL = {"ticker": "MNQ1!", "action": "buy"}

REFUSALS: list[tuple[str, bytes | dict[str, Any], str]] = [
    ("empty body", b"", "empty-json"),
    ("whitespace body", b"  \n", "empty-json"),
    ("empty object", b"{}", "empty-json"),
    ("tradingview plain text", b"buy MNQ1! at 21500", "malformed-json"),
    ("trailing comma", b'{"ticker": "MNQ1!", "action": "buy",}', "malformed-json"),
    ("json array", b'[{"ticker": "MNQ1!"}]', "malformed-json"),
    ("no action", {"ticker": "MNQ1!"}, "invalid-payload"),
    ("no ticker", {"action": "buy"}, "invalid-payload"),
    ("ticker not a string", {"ticker": 5, "action": "buy"}, "invalid-payload"),
    ("empty ticker", {"ticker": " ", "action": "buy"}, "empty-ticker-name"),
    ("unknown action", {**_SIGNAL, "action": "long"}, "invalid-action"),
    ("action not a string", {**_SIGNAL, "action": 1}, "invalid-action"),
    ("unknown sentiment", {**_SIGNAL, "sentiment": "up"}, "invalid-sentiment"),
    ("sentiment on exit", {**_SIGNAL, "action": "exit", "sentiment": "flat"},
     "invalid-sentiment-action"),
    ("sentiment on cancel", {**_SIGNAL, "action": "cancel", "sentiment": "bullish"},
     "invalid-sentiment-action"),
    ("zero quantity", {**_SIGNAL, "quantity": 0}, "invalid-quantity"),
    ("negative quantity", {**_SIGNAL, "quantity": -1}, "invalid-quantity"),
    ("text quantity", {**_SIGNAL, "quantity": "two"}, "invalid-quantity"),
    ("boolean quantity", {**_SIGNAL, "quantity": True}, "invalid-quantity"),
    ("unknown order type", {**_SIGNAL, "orderType": "iceberg"}, "invalid-order-type"),
    ("negative limit price", {**_SIGNAL, "limitPrice": -5}, "invalid-payload"),
    ("tp absolute and relative", {**_SIGNAL, "takeProfit": {"limitPrice": 21600, "percent": 1}},
     "invalid-take-profit-relative-and-absolute"),
    ("tp percent and amount", {**_SIGNAL, "takeProfit": {"percent": 1, "amount": 20}},
     "invalid-take-profit-amount-and-percent"),
    ("tp without a value", {**_SIGNAL, "takeProfit": {}}, "invalid-take-profit-value-required"),
    ("tp negative percent", {**_SIGNAL, "takeProfit": {"percent": -1}},
     "invalid-take-profit-percent"),
    ("tp bad amount", {**_SIGNAL, "takeProfit": {"amount": "x"}}, "invalid-take-profit-amount"),
    ("tp bad limit", {**_SIGNAL, "takeProfit": {"limitPrice": 0}},
     "invalid-take-profit-limit-price"),
    ("sl absolute and relative", {**_SIGNAL, "stopLoss": {"stopPrice": 21400, "amount": 10}},
     "invalid-stop-loss-relative-and-absolute"),
    ("sl percent and amount", {**_SIGNAL, "stopLoss": {"percent": 1, "amount": 10}},
     "invalid-stop-loss-amount-and-percent"),
    ("sl unknown type", {**_SIGNAL, "stopLoss": {"type": "guaranteed", "amount": 10}},
     "invalid-stop-loss-type"),
    ("sl without a value", {**_SIGNAL, "stopLoss": {"type": "stop"}},
     "invalid-stop-loss-value-required"),
    ("sl bad stop price", {**_SIGNAL, "stopLoss": {"stopPrice": -1}},
     "invalid-stop-loss-stop-price"),
    ("sl bad percent", {**_SIGNAL, "stopLoss": {"percent": 0}}, "invalid-stop-loss-percent"),
    ("sl bad amount", {**_SIGNAL, "stopLoss": {"amount": []}}, "invalid-stop-loss-amount"),
    ("sl limit on a stop", {**_SIGNAL, "stopLoss": {"amount": 10, "limitPrice": 21390}},
     "invalid-stop-loss-limit-price"),
    ("trailing without trail", {**_SIGNAL, "stopLoss": {"type": "trailing_stop"}},
     "invalid-stop-loss-trail-value-required"),
    ("trailing with both", {**_SIGNAL, "stopLoss": {"type": "trailing_stop", "trailAmount": 5,
                                                    "trailPercent": 1}},
     "invalid-stop-loss-trail-value"),
    ("trail on a plain stop", {**_SIGNAL, "stopLoss": {"amount": 10, "trailAmount": 5}},
     "invalid-stop-loss-trail-value"),
    ("bad trail amount", {**_SIGNAL, "stopLoss": {"type": "trailing_stop", "trailAmount": -5}},
     "invalid-stop-loss-trail-amount"),
    ("bad trail percent", {**_SIGNAL, "stopLoss": {"type": "trailing_stop", "trailPercent": 0}},
     "invalid-stop-loss-trail-percent"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
async def test_invalid_signal_is_400_with_the_traderspost_message_code(
    client: httpx.AsyncClient, bus: Bus, hook: str, body: bytes | dict[str, Any], code: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    response = await client.post(hook, content=content)

    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["success"] is False
    assert answer["messageCode"] == code
    assert len(answer["message"]) > 20
    assert answer["message"].endswith(".")
    assert await _stream_messages(bus) == 0


async def test_ticker_outside_the_allowed_list_is_unsupported_ticker(
    client: httpx.AsyncClient, bus: Bus, make_strategy: Any
) -> None:
    limited = await make_strategy(allowed_tickers=["MNQ1!", "MES1!"])
    hook = f"/webhooks/{limited['strategy_id']}/{limited['secret']}"

    refused = await client.post(hook, json={"ticker": "NQ1!", "action": "buy"})
    allowed = await client.post(hook, json={"ticker": "mes1!", "action": "sell"})

    assert refused.status_code == 400
    assert refused.json()["messageCode"] == "unsupported-ticker"
    assert "MES1!, MNQ1!" in refused.json()["message"]
    assert allowed.status_code == 200
    assert await _stream_messages(bus) == 1


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"action": "SELL", "sentiment": "Short"}, {"action": "sell", "sentiment": "bearish"}),
        ({"action": "exit", "quantity": "1"}, {"action": "exit", "quantity": 1}),
        ({"orderType": "limit", "limitPrice": 21499.75}, {"orderType": "limit",
                                                          "limitPrice": 21499.75}),
        ({"signalPrice": 1.5, "price": 2.5}, {"signalPrice": 1.5}),
        ({"price": 21000, "stopLoss": {"type": "trailing_stop", "trailPercent": 0.5}},
         {"stopLoss": {"type": "trailing_stop", "trailPercent": 0.5}}),
        ({"test": True, "extras": "not an object"}, {"test": True}),
    ],
)  # fmt: skip
async def test_accepted_variants_are_normalised(
    client: httpx.AsyncClient, hook: str, extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = await client.post(hook, json={"ticker": "MNQ1!", "action": "buy", **extra})

    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    for key, value in expected.items():
        assert payload[key] == value
    assert "extras" not in payload or isinstance(payload["extras"], dict)


async def test_health_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    spec = await client.get("/openapi.json")

    assert health.json() == {
        "status": "ok",
        "nats_connected": True,
        "outbox": True,
        "outbox_pending": 0,
    }
    paths = spec.json()["paths"]
    assert "/webhooks/{strategy_id}/{secret}" in paths
    assert "/admin/strategies" in paths
    assert "/admin/strategies/{strategy_id}/subscriptions/{account_id}" in paths
