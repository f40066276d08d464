"""Order validation: what a new or modified order must satisfy before the engine sees it.

Prices and stops on the contract's tick, known order types and times in force, the account's
owner, the market open, the max position (orders that reduce the position always pass).
"""

from __future__ import annotations

from phalanx_sim.contracts import ContractInfo, on_tick
from phalanx_sim.replies import Reply
from phalanx_sim.schemas import PlaceOrderBody, PlaceOrderResult
from phalanx_sim.state import AccountBook, Session
from phalanx_sim.venue_core import VenueCore

__all__ = ["check_order", "price_failure"]

_ORDER_TYPES = frozenset({"Market", "Limit", "Stop", "StopLimit", "TrailingStop"})
_KNOWN_ORDER_TYPES = _ORDER_TYPES | {"MIT", "QTS", "TrailingStopLimit"}
_TIME_IN_FORCE = frozenset({"Day", "GTC", "IOC", "FOK"})
_KNOWN_TIME_IN_FORCE = _TIME_IN_FORCE | {"GTD"}
_ACTIONS = frozenset({"Buy", "Sell"})


def price_failure(
    info: ContractInfo,
    order_type: str,
    action: str,
    price: float | None,
    stop_price: float | None,
    peg: float | None = None,
    time_in_force: str | None = None,
) -> tuple[str, str] | None:
    """Why an order's type, action, prices or time in force are refused (reason, text)."""
    return _kind_failure(order_type, action, time_in_force) or _prices_failure(
        info, order_type, price, stop_price, peg
    )


def _kind_failure(
    order_type: str, action: str, time_in_force: str | None
) -> tuple[str, str] | None:
    """Why an order's action, type or time in force are refused."""
    if action not in _ACTIONS:
        return "UnknownReason", f"Violation: action must be Buy or Sell, not {action!r}"
    if order_type not in _KNOWN_ORDER_TYPES:
        return "UnknownReason", f"Violation: unknown orderType {order_type!r}"
    if order_type not in _ORDER_TYPES:
        return "Unsupported", f"orderType {order_type} is not supported by the simulator"
    if time_in_force is not None and time_in_force not in _KNOWN_TIME_IN_FORCE:
        return "UnknownReason", f"Violation: unknown timeInForce {time_in_force!r}"
    if time_in_force is not None and time_in_force not in _TIME_IN_FORCE:
        return "Unsupported", f"timeInForce {time_in_force} is not supported by the simulator"
    return None


def _prices_failure(
    info: ContractInfo,
    order_type: str,
    price: float | None,
    stop_price: float | None,
    peg: float | None,
) -> tuple[str, str] | None:
    """Why an order's prices are refused: missing for its type, or off the tick."""
    tick = info.spec.tick_size
    needs_price = order_type in ("Limit", "StopLimit")
    needs_stop = order_type in ("Stop", "StopLimit", "TrailingStop")
    if order_type == "TrailingStop" and (peg is None or abs(peg) < tick / 2):
        return "InvalidPrice", "TrailingStop order requires a non-zero pegDifference"
    if peg is not None and not on_tick(peg, tick):
        return "InvalidPrice", f"Invalid pegDifference {peg}: tick size is {tick}"
    if needs_price and price is None:
        return "InvalidPrice", f"{order_type} order requires price"
    if needs_stop and stop_price is None:
        return "InvalidPrice", f"{order_type} order requires stopPrice"
    if needs_price and price is not None and not on_tick(price, tick):
        return "InvalidPrice", f"Invalid price {price}: tick size of {info.contract.name} is {tick}"
    if needs_stop and stop_price is not None and not on_tick(stop_price, tick):
        return (
            "InvalidPrice",
            f"Invalid stop price {stop_price}: tick size of {info.contract.name} is {tick}",
        )
    return None


def check_order(
    venue: VenueCore, session: Session, body: PlaceOrderBody
) -> tuple[AccountBook, ContractInfo] | Reply:
    """A new order's account book and contract, or the reply that refuses it."""
    if body.accountId is None or body.accountSpec is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="UnknownReason",
                failureText="Violation: accountId and accountSpec are required",
            ),
        )
    book = venue.owned_book(session, body.accountId)
    if book is None or book.account.name != body.accountSpec:
        return venue.denied()
    info = venue.contracts.resolve(body.symbol)
    if info is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="InvalidContract", failureText=f"Unknown contract {body.symbol!r}"
            ),
        )
    if body.orderQty <= 0:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="UnknownReason", failureText="Violation: orderQty must be positive"
            ),
        )
    failure = price_failure(
        info,
        body.orderType,
        body.action,
        body.price,
        body.stopPrice,
        body.pegDifference,
        body.timeInForce,
    )
    if failure is None:
        failure = _risk_failure(venue, book, info, body.action, body.orderQty)
    if failure is not None:
        return Reply(200, PlaceOrderResult(failureReason=failure[0], failureText=failure[1]))
    return book, info


def _risk_failure(
    venue: VenueCore, book: AccountBook, info: ContractInfo, action: str, qty: int
) -> tuple[str, str] | None:
    if not venue.market_open:
        return "SessionClosed", "Trading session is closed"
    limit = venue.max_position.get(book.account.id, venue.settings.sim_max_position)
    if limit > 0:
        position = book.positions.get(info.contract.id)
        net = position.netPos if position is not None else 0
        after = net + (qty if action == "Buy" else -qty)
        if abs(after) > limit and abs(after) > abs(net):
            return (
                "MaxPosLimitReached",
                f"Max position of {limit} for {info.contract.name} would be exceeded ({after})",
            )
    return None
