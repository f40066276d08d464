"""The accepted signal echoed back in TradersPost's field names (the answer's ``payload``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from phalanx_common.events import Signal

__all__ = ["signal_to_payload"]


def signal_to_payload(signal: Signal) -> dict[str, Any]:
    """The accepted signal in TradersPost field names, for the ``payload`` of the answer.

    Values are the normalised ones (``long`` comes back as ``bullish``; ``price`` as
    ``signalPrice``; ``orderType`` is always present); ``extras`` is returned as sent.
    """
    builtins: dict[str, Any] = msgspec.to_builtins(signal, builtin_types=(Decimal,))
    builtins["order_type"] = signal.order_type  # shown even when it is the default
    return {
        _RENAMED.get(key, _camel(key)): _camel_keys(val) if key != "extras" else val
        for key, val in builtins.items()
    }


_RENAMED = {"delay_s": "delay"}


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): v for k, v in value.items()}
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
