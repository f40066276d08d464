"""The venue view keeps only the most recent finished orders (bounded memory) and knows the
working orders' types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import LiveClock
from phalanx_common.codec import decode
from phalanx_common.events import FillReceived
from phalanx_executor.venue_view import VenueView
from phalanx_testing.waiting import eventually
from phalanx_tradovate import PropsEvent, SyncSnapshot, TradovateSocket, wire

pytestmark = pytest.mark.integration


async def _no_socket(login_id: str) -> TradovateSocket:
    raise AssertionError(f"no venue call expected (asked for {login_id})")


def _order(order_id: int, status: str) -> PropsEvent:
    entity = {"id": order_id, "accountId": 7, "contractId": 1, "ordStatus": status}
    return PropsEvent("order", "Updated", entity)


def _command(order_id: int, cl_ord_id: str) -> PropsEvent:
    entity = {"id": 1000 + order_id, "orderId": order_id, "clOrdId": cl_ord_id}
    return PropsEvent("command", "Created", {**entity, "commandType": "New"})


async def test_only_the_most_recent_finished_orders_are_kept(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "view-test")
    try:
        view = VenueView(bus, LiveClock(), _no_socket, keep_finished=2)
        for order_id in (1, 2, 3, 4):
            view.submit("login", _command(order_id, f"cl-{order_id}"))
            view.submit("login", _order(order_id, "Filled"))
        view.submit("login", _order(5, "Working"))

        assert [view.settled(o) for o in (1, 2, 3, 4, 5)] == [False, False, True, True, True]
        assert view.order_for("cl-1") is None
        assert view.order_for("cl-4") == 4
        assert [o.id for o in view.working_orders(7)] == [5]  # working orders are never dropped
    finally:
        await bus.close()


async def test_the_order_type_comes_from_the_latest_order_version(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "view-test")
    try:
        view = VenueView(bus, LiveClock(), _no_socket)
        view.submit("login", _order(5, "Working"))
        assert view.order_type(5) is None  # not known before its version arrives
        view.submit("login", PropsEvent("orderVersion", "Created", _version(50, 5, "Stop")))
        view.submit("login", PropsEvent("orderVersion", "Created", _version(51, 5, "Limit")))
        assert view.order_type(5) == "Limit"  # modified: the newest version wins
        snapshot = SyncSnapshot(
            orders=[wire.Order(id=6, accountId=7, contractId=1, ordStatus="Working")],
            orderVersions=[wire.OrderVersion(**_version(60, 6, "TrailingStop"))],
        )
        await view.ingest_snapshot("login", snapshot)
        assert view.order_type(6) == "TrailingStop"
    finally:
        await bus.close()


def _version(version_id: int, order_id: int, order_type: str) -> dict[str, Any]:
    return {"id": version_id, "orderId": order_id, "orderQty": 1, "orderType": order_type}


async def test_a_position_is_unknown_until_synced_and_while_a_fill_may_be_unseen(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "view-test")
    try:
        view = VenueView(bus, LiveClock(), _no_socket)
        assert view.known_position(7, 1) is None  # no snapshot has reported account 7
        assert view.position(7, 1) == 0  # (the raw reading would have said flat)
        account = wire.Account(id=7, name="DEMO7")
        await view.ingest_snapshot("login", SyncSnapshot(accounts=[account]))
        assert view.known_position(7, 1) == 0

        view.remember_order(8, 7, "cl-8")  # placed here; its props have not arrived
        assert view.known_position(7, 1) is None
        view.submit("login", _order(8, "Working"))
        view.submit("login", PropsEvent("orderVersion", "Created", _version(80, 8, "Market")))
        assert view.known_position(7, 1) is None  # a Working Market order: its fill is due
        assert not view.resolved(8)  # "settled" (Working) is not "filled"
        assert view.settled(8)

        position = {"id": 90, "accountId": 7, "contractId": 1, "netPos": 1}
        view.submit("login", PropsEvent("position", "Updated", position))
        view.submit("login", _order(8, "Filled"))
        assert view.resolved(8)
        assert view.known_position(7, 1) == 1

        view.submit("login", _order(9, "Working"))
        view.submit("login", PropsEvent("orderVersion", "Created", _version(90, 9, "Limit")))
        assert view.resolved(9)  # a resting Limit: working, no fill due
        assert view.known_position(7, 1) == 1
    finally:
        await bus.close()


async def test_fills_in_a_snapshot_are_attributed_from_it_without_asking_the_venue(
    nats_url: str,
) -> None:
    bus = await Bus.connect(nats_url, "view-test")
    try:
        await bus.ensure_topology()
        view = VenueView(bus, LiveClock(), _no_socket, keep_finished=0)  # forgets finished orders
        view.start()
        fill = wire.Fill(id=77, orderId=8, contractId=1, action="Buy", qty=1, price=Decimal(10))
        snapshot = SyncSnapshot(
            accounts=[wire.Account(id=7, name="DEMO7")],
            orders=[wire.Order(id=8, accountId=7, contractId=1, ordStatus="Filled")],
            contracts=[wire.Contract(id=1, name="MESZ6")],
            fills=[fill],
        )
        await view.ingest_snapshot("login", snapshot)
        await eventually(lambda: view.published_fills == 1, what="fill published")
        assert view.unattributed_fills == 0
        await view.stop()
        msg = await (await bus.js.pull_subscribe(subjects.fills_subject(7), durable=None)).fetch(1)
        assert decode(msg[0].data, FillReceived).account_id == 7
    finally:
        await bus.close()
