"""What one order asks for (:class:`OrderSpec`) and who sends it, and how (:class:`Origin`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OrderSpec", "Origin"]


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What one order asks for (entry or bracket leg)."""

    action: str
    order_type: str
    qty: int
    price: float | None = None
    stop_price: float | None = None
    time_in_force: str | None = None
    text: str | None = None
    cl_ord_id: str | None = None
    max_show: int | None = None
    peg_difference: float | None = None
    expire_time: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sends a command, and how (stored on the Command entity)."""

    user_id: int
    session_id: int
    is_automated: bool = False
    custom_tag50: str | None = None
    activation_time: str | None = None
