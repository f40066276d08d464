"""Parsing ``md`` events of the market-data socket (pure)."""

from __future__ import annotations

from decimal import Decimal

from phalanx_tradovate.marketdata import Quote, parse_quotes


def test_quotes_keep_bid_offer_and_trade_and_skip_malformed_items() -> None:
    data = {
        "quotes": [
            {
                "timestamp": "2026-11-30T10:00:00.000Z",
                "contractId": 42,
                "entries": {
                    "Bid": {"price": 21000.25, "size": 3},
                    "Offer": {"price": 21000.5, "size": 4},
                    "Trade": {"price": 21000.25, "size": 1},
                    "TotalTradeVolume": {"size": 900},
                },
            },
            {"contractId": 43, "entries": {"Offer": {"size": 2}}},  # a side without a price
            {"contractId": "44", "entries": {}},  # not a contract id
            "nonsense",
        ]
    }

    quotes = parse_quotes(data, received_ns=7)

    assert quotes == [
        Quote(
            contract_id=42,
            timestamp="2026-11-30T10:00:00.000Z",
            bid=Decimal("21000.25"),
            offer=Decimal("21000.5"),
            trade=Decimal("21000.25"),
            received_ns=7,
        ),
        Quote(contract_id=43, timestamp="", bid=None, offer=None, trade=None, received_ns=7),
    ]


def test_anything_but_a_quotes_list_is_no_quote() -> None:
    assert parse_quotes({"charts": []}, 1) == []
    assert parse_quotes(None, 1) == []
