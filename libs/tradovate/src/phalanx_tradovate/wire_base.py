"""The base of every Tradovate wire struct and the enumerations the structs share."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Action", "OrderType", "TimeInForce", "WireStruct"]

Action = Literal["Buy", "Sell"]
OrderType = Literal[
    "Limit", "MIT", "Market", "QTS", "Stop", "StopLimit", "TrailingStop", "TrailingStopLimit"
]
TimeInForce = Literal["Day", "FOK", "GTC", "GTD", "IOC"]


class WireStruct(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every wire struct: frozen, keyword-only, ``None`` fields omitted when encoding."""
