"""Unit tests: SockJS-style frame parsing and request encoding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from phalanx_tradovate import wire
from phalanx_tradovate.errors import ProtocolError
from phalanx_tradovate.frames import (
    ArrayFrame,
    CloseFrame,
    EventMessage,
    HeartbeatFrame,
    OpenFrame,
    PropsEvent,
    Response,
    encode_request,
    parse_frame,
    parse_props,
)


def test_open_and_heartbeat_frames() -> None:
    assert parse_frame("o") == OpenFrame()
    assert parse_frame("h") == HeartbeatFrame()


def test_close_frame_carries_code_and_reason() -> None:
    assert parse_frame('c[1000,"Normal closure"]') == CloseFrame(1000, "Normal closure")
    assert parse_frame("c") == CloseFrame(0, "")


def test_array_frame_separates_responses_from_events() -> None:
    frame = parse_frame(
        'a[{"s":200,"i":3,"d":{"orderId":1}},{"e":"props","d":{"entityType":"fill"}},'
        '{"s":401,"i":0,"d":"Invalid access token"}]'
    )
    assert frame == ArrayFrame(
        [
            Response(200, 3, {"orderId": 1}),
            EventMessage("props", {"entityType": "fill"}),
            Response(401, 0, "Invalid access token"),
        ]
    )


@pytest.mark.parametrize("text", ["", "x", "a{", 'a{"s":200}', "a[1]", 'a[{"d":1}]'])
def test_malformed_frames_raise_protocol_error(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(text)


def test_props_with_object_entity() -> None:
    events = parse_props(
        {"entityType": "order", "eventType": "Updated", "entity": {"id": 5, "ordStatus": "Working"}}
    )
    assert events == [PropsEvent("order", "Updated", {"id": 5, "ordStatus": "Working"})]
    assert events[0].decode_entity() == wire.Order(id=5, ordStatus="Working")


def test_props_with_array_entity_is_split() -> None:
    events = parse_props(
        {
            "entityType": "fill",
            "eventType": "Created",
            "entity": [
                {"id": 1, "orderId": 9, "price": Decimal("10.25"), "qty": 1},
                {"id": 2, "orderId": 9, "price": Decimal("10.5"), "qty": 2},
            ],
        }
    )
    assert [e.decode_entity() for e in events] == [
        wire.Fill(id=1, orderId=9, price=Decimal("10.25"), qty=1),
        wire.Fill(id=2, orderId=9, price=Decimal("10.5"), qty=2),
    ]


def test_props_of_unknown_type_decode_to_dict() -> None:
    (event,) = parse_props({"entityType": "fillPair", "eventType": "Created", "entity": {"id": 1}})
    assert event.decode_entity() == {"id": 1}


def test_parse_props_rejects_non_props() -> None:
    with pytest.raises(ProtocolError):
        parse_props({"reasonCode": "Maintenance"})


def test_encode_request_lines() -> None:
    assert encode_request("authorize", 0, "", "tok") == "authorize\n0\n\ntok"
    assert encode_request("/order/deps", 4, "?masterid=7") == "order/deps\n4\nmasterid=7\n"
    text = encode_request("order/cancelorder", 5, body=wire.CancelOrder(orderId=3))
    head, body = text.rsplit("\n", 1)
    assert head == "order/cancelorder\n5\n"
    assert wire.decode_json(body) == {"orderId": 3, "isAutomated": True}


def test_prices_in_frames_stay_exact() -> None:
    frame = parse_frame(
        'a[{"e":"props","d":{"entityType":"position","eventType":"Updated",'
        '"entity":{"id":1,"netPos":1,"netPrice":4150.3}}}]'
    )
    assert isinstance(frame, ArrayFrame)
    message = frame.messages[0]
    assert isinstance(message, EventMessage)
    (event,) = parse_props(message.data)
    position = event.decode_entity()
    assert isinstance(position, wire.Position)
    assert position.netPrice == Decimal("4150.3")
