"""Order endpoints: ``order/placeOrder``, ``placeOSO``, ``cancelOrder``, ``modifyOrder``,
``liquidatePosition`` (validation first: ``validation.py``; then the matching engine)."""

from __future__ import annotations

from phalanx_sim.endpoints.params import decode_body
from phalanx_sim.matching import OrderSpec
from phalanx_sim.replies import Reply
from phalanx_sim.routes import RouteTable, SessionRoute
from phalanx_sim.schemas import (
    CancelOrderBody,
    CommandResult,
    LiquidatePositionBody,
    ModifyOrderBody,
    PlaceOrderBody,
    PlaceOrderResult,
    PlaceOsoBody,
    PlaceOsoResult,
)
from phalanx_sim.state import CommandRecord, OrderRecord, Session
from phalanx_sim.validation import check_order, price_failure
from phalanx_sim.venue_core import VenueCore

__all__ = ["order_routes"]


def _place_order(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, PlaceOrderBody)
    venue.state.counters["placeorder"] += 1
    checked = check_order(venue, session, request)
    if isinstance(checked, Reply):
        return checked
    book, info = checked
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    entry, _ = venue.engine.place(book, info, venue.order_spec(request, request.orderQty), origin)
    return Reply(200, PlaceOrderResult(orderId=entry.order.id))


def _place_oso(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, PlaceOsoBody)
    venue.state.counters["placeoso"] += 1
    checked = check_order(venue, session, request)
    if isinstance(checked, Reply):
        return checked
    book, info = checked
    brackets = [b for b in (request.bracket1, request.bracket2) if b is not None]
    for bracket in brackets:
        failure = price_failure(
            info,
            bracket.orderType,
            bracket.action,
            bracket.price,
            bracket.stopPrice,
            bracket.pegDifference,
            bracket.timeInForce,
        )
        if failure is not None:
            return Reply(200, PlaceOsoResult(failureReason=failure[0], failureText=failure[1]))
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    qty = request.orderQty
    entry, children = venue.engine.place(
        book,
        info,
        venue.order_spec(request, qty),
        origin,
        [venue.order_spec(b, qty) for b in brackets],
    )
    return Reply(
        200,
        PlaceOsoResult(
            orderId=entry.order.id,
            oso1Id=children[0].order.id,
            oso2Id=children[1].order.id if len(children) > 1 else None,
        ),
    )


def _command_reply(rec: OrderRecord, command: CommandRecord | None) -> Reply:
    """A queued command's id, or ``TooLate`` when the order was already finished."""
    if command is None:
        return Reply(
            200,
            CommandResult(failureReason="TooLate", failureText=f"Order is {rec.order.ordStatus}"),
        )
    return Reply(200, CommandResult(commandId=command.command.id))


def _cancel_order(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, CancelOrderBody)
    rec = venue.owned_order(session, request.orderId)
    if rec is None:
        return venue.denied()
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    command = venue.engine.cancel(rec, origin, request.clOrdId)
    return _command_reply(rec, command)


def _modify_order(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, ModifyOrderBody)
    rec = venue.owned_order(session, request.orderId)
    if rec is None:
        return venue.denied()
    failure = price_failure(
        rec.info,
        request.orderType,
        rec.order.action,
        request.price,
        request.stopPrice,
        request.pegDifference,
        request.timeInForce,
    )
    if failure is None and request.orderQty <= 0:
        failure = ("UnknownReason", "Violation: orderQty must be positive")
    if failure is not None:
        return Reply(200, CommandResult(failureReason=failure[0], failureText=failure[1]))
    spec = OrderSpec(
        action=rec.order.action,
        order_type=request.orderType,
        qty=request.orderQty,
        price=request.price,
        stop_price=request.stopPrice,
        time_in_force=request.timeInForce,
        text=request.text,
        cl_ord_id=request.clOrdId,
        max_show=request.maxShow,
        peg_difference=request.pegDifference,
        expire_time=request.expireTime,
    )
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    command = venue.engine.modify(rec, spec, origin)
    return _command_reply(rec, command)


def _liquidate_position(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, LiquidatePositionBody)
    book = venue.owned_book(session, request.accountId)
    if book is None:
        return venue.denied()
    info = venue.contracts.by_id(request.contractId)
    if info is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="InvalidContract",
                failureText=f"Unknown contract {request.contractId}",
            ),
        )
    origin = venue.origin(session, request.isAutomated, request.customTag50)
    closing, _canceled = venue.engine.liquidate(book, info, origin)
    if closing is None:
        return Reply(
            200,
            PlaceOrderResult(failureReason="UnknownReason", failureText="No position to liquidate"),
        )
    return Reply(200, PlaceOrderResult(orderId=closing.order.id))


def order_routes() -> RouteTable:
    """The order endpoints."""
    return {
        "order/placeorder": SessionRoute(_place_order),
        "order/placeoso": SessionRoute(_place_oso),
        "order/cancelorder": SessionRoute(_cancel_order),
        "order/modifyorder": SessionRoute(_modify_order),
        "order/liquidateposition": SessionRoute(_liquidate_position),
    }
