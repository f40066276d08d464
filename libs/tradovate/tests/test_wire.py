"""Unit tests: wire structs encode and decode the way Tradovate expects."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from phalanx_tradovate import wire


def _oso(**overrides: object) -> wire.PlaceOso:
    fields: dict[str, object] = {
        "accountSpec": "DEMO123",
        "accountId": 7,
        "action": "Buy",
        "symbol": "MNQZ5",
        "orderQty": 2,
        "orderType": "Market",
        "clOrdId": "s1-7",
        "bracket1": wire.RestrainedOrderVersion(
            action="Sell", orderType="Limit", price=Decimal("21050.25")
        ),
        "bracket2": wire.RestrainedOrderVersion(
            action="Sell", orderType="Stop", stopPrice=Decimal("20990.75")
        ),
    }
    fields.update(overrides)
    return msgspec.convert(fields, wire.PlaceOso)


def test_place_oso_encodes_camel_case_numbers_and_omits_none() -> None:
    body = msgspec.json.decode(wire.encode(_oso()))
    assert body == {
        "accountSpec": "DEMO123",
        "accountId": 7,
        "action": "Buy",
        "symbol": "MNQZ5",
        "orderQty": 2,
        "orderType": "Market",
        "clOrdId": "s1-7",
        "isAutomated": True,
        "bracket1": {"action": "Sell", "orderType": "Limit", "price": 21050.25},
        "bracket2": {"action": "Sell", "orderType": "Stop", "stopPrice": 20990.75},
    }
    # prices are JSON numbers, not strings, and keep every digit
    assert b'"price":21050.25' in wire.encode(_oso())


def test_is_automated_is_always_sent_unless_explicitly_false() -> None:
    assert msgspec.json.decode(wire.encode(_oso()))["isAutomated"] is True
    assert msgspec.json.decode(wire.encode(_oso(isAutomated=False)))["isAutomated"] is False
    cancel = msgspec.json.decode(wire.encode(wire.CancelOrder(orderId=5)))
    assert cancel == {"orderId": 5, "isAutomated": True}


def test_liquidate_position_always_sends_admin_false() -> None:
    body = msgspec.json.decode(wire.encode(wire.LiquidatePosition(accountId=1, contractId=2)))
    assert body == {"accountId": 1, "contractId": 2, "admin": False, "isAutomated": True}


def test_sync_request_always_sends_split_responses_and_entity_types() -> None:
    body = msgspec.json.decode(wire.encode(wire.SyncRequest(users=[42])))
    assert body == {
        "users": [42],
        "splitResponses": True,
        "entityTypes": list(wire.DEFAULT_ENTITY_TYPES),
    }
    only = msgspec.json.decode(wire.encode(wire.SyncRequest(accounts=[1], entityTypes=["fill"])))
    assert only == {"accounts": [1], "splitResponses": True, "entityTypes": ["fill"]}


def test_place_oso_round_trips() -> None:
    order = _oso()
    again = wire.convert(wire.decode_json(wire.encode(order)), wire.PlaceOso)
    assert again == order
    assert again.bracket1.price == Decimal("21050.25")


def test_decoding_ignores_unknown_fields_and_keeps_decimals_exact() -> None:
    raw = (
        b'{"id":9,"orderId":3,"contractId":4,"action":"Sell","qty":1,'
        b'"price":21000.1,"active":true,"somethingNew":{"x":1}}'
    )
    fill = wire.convert(wire.decode_json(raw), wire.Fill)
    assert fill == wire.Fill(
        id=9, orderId=3, contractId=4, action="Sell", qty=1, price=Decimal("21000.1"), active=True
    )


def test_access_token_response_accepts_sparse_answers_and_hides_token_in_repr() -> None:
    resp = wire.convert(
        wire.decode_json(b'{"accessToken":"secret","expirationTime":"2026-01-01T00:00:00Z"}'),
        wire.AccessTokenResponse,
    )
    assert resp.accessToken == "secret"
    assert resp.userId is None
    assert "secret" not in repr(resp)
    req = wire.AccessTokenRequest(name="u", password="hunter2")
    assert "hunter2" not in repr(req)
    assert msgspec.json.decode(wire.encode(req)) == {"name": "u", "password": "hunter2"}


@pytest.mark.parametrize(
    ("body", "ticket", "expected"),
    [
        (wire.CancelOrder(orderId=1), None, {"orderId": 1, "isAutomated": True}),
        (
            wire.CancelOrder(orderId=1),
            "tk",
            {"orderId": 1, "isAutomated": True, "p-ticket": "tk"},
        ),
        ({}, "tk", {"p-ticket": "tk"}),
    ],
)
def test_encode_with_ticket_adds_the_ticket(
    body: msgspec.Struct | dict[str, object], ticket: str | None, expected: dict[str, object]
) -> None:
    assert msgspec.json.decode(wire.encode_with_ticket(body, ticket)) == expected


def test_sync_snapshot_decodes_typed_arrays() -> None:
    snap = wire.convert(
        wire.decode_json(
            b'{"users":[{"id":1}],"accounts":[{"id":7,"name":"DEMO7"}],'
            b'"positions":[{"id":3,"accountId":7,"contractId":4,"netPos":-2,"netPrice":101.25}],'
            b'"marginSnapshots":[]}'
        ),
        wire.SyncSnapshot,
    )
    assert snap.accounts == [wire.Account(id=7, name="DEMO7")]
    assert snap.positions[0].netPos == -2
    assert snap.positions[0].netPrice == Decimal("101.25")
    assert snap.orders == []
