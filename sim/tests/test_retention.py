"""Finished orders are forgotten after the retention, with everything that hangs off them; what
is still working, positions and cash are not touched; memory per order stays bounded (ADR-0187).

The venue is driven in-process through :meth:`Venue.handle` (the dispatcher every transport
uses), on a :class:`ManualClock`.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from phalanx_sim import running_simulator
from phalanx_sim.memory_probe import TradingDesk, held_per_order
from phalanx_sim.settings import SimSettings, load_sim_settings
from phalanx_sim.state import OrderRecord
from phalanx_sim.testing import ManualClock, login_body, oso_body
from phalanx_sim.venue import Venue
from phalanx_testing.waiting import eventually

DAY_S = 86_400.0


def _venue(**settings: Any) -> tuple[Venue, TradingDesk, ManualClock]:
    clock = ManualClock(start=1_790_000_000.0)
    venue = Venue(SimSettings(sim_rate_limits=False, **settings), clock)
    return venue, TradingDesk(venue, accounts=2), clock


def _get(venue: Venue, desk: TradingDesk, endpoint: str, query: str) -> tuple[int, Any]:
    reply = venue.handle(endpoint, desk.session, query)
    return reply.status, msgspec.to_builtins(reply.payload)


def _ids_of(rec: OrderRecord) -> set[int]:
    """Every entity id that exists because of this order."""
    ids = {rec.order.id, *(v.id for v in rec.versions), *(f.id for f in rec.fills)}
    for crec in rec.commands:
        ids.add(crec.command.id)
        ids.update(r.id for r in crec.reports)
        ids.update(e.id for e in crec.executions)
    return ids


def _pair(desk: TradingDesk, account: int, cl_ord_id: str) -> list[OrderRecord]:
    """An entry with brackets, then its exit: the four orders, entry first."""
    account_id, name = desk.accounts[account]
    before = set(desk.venue.state.orders)
    desk.entry(account_id, name, cl_ord_id)
    desk.exit(account_id)
    new = sorted(set(desk.venue.state.orders) - before)
    return [desk.venue.state.orders[i] for i in new]


def _state_of(venue: Venue, desk: TradingDesk, account: int) -> Any:
    account_id = desk.accounts[account][0]
    book = venue.state.books[account_id]
    return msgspec.to_builtins([book.cash, list(book.positions.values())])


def test_a_finished_family_is_kept_for_the_retention_then_forgotten_with_its_records() -> None:
    venue, desk, clock = _venue(sim_finished_order_retention_s=DAY_S)
    orders = _pair(desk, 0, "sig-a")
    assert [r.order.ordStatus for r in orders] == ["Filled", "Canceled", "Canceled", "Filled"]
    entry = orders[0]
    ids = set().union(*(_ids_of(r) for r in orders))
    fill_ids = {f.id for r in orders for f in r.fills}
    account_id = desk.accounts[0][0]

    clock.advance(DAY_S - 1)  # far longer than any clOrdId lookup: still all there
    assert venue.engine.finished.prune() == 0
    assert ids <= set(venue.state.entities)
    status, commands = _get(venue, desk, "command/deps", f"masterid={entry.order.id}")
    assert (status, [c["clOrdId"] for c in commands]) == (200, ["sig-a"])
    assert _get(venue, desk, "fillFee/item", f"id={min(fill_ids)}")[0] == 200

    clock.advance(1)
    assert venue.engine.finished.prune() == 4
    state = venue.state
    assert ids.isdisjoint(state.entities)
    assert ids.isdisjoint(state.orders)
    assert ids.isdisjoint(state.commands)
    assert fill_ids.isdisjoint(state.fill_fees)
    assert state.books[account_id].fills == {}
    assert state.books[account_id].orders == {}
    assert venue.engine.finished.held == 0
    assert venue.engine.finished.forgotten == 4


def test_a_forgotten_order_is_answered_as_an_id_that_never_existed() -> None:
    venue, desk, clock = _venue(sim_finished_order_retention_s=60.0)
    entry, _tp, _sl, closing = _pair(desk, 0, "sig-a")
    command = entry.new_command.command.id
    fill = closing.fills[0].id
    never = 99_999_999_999
    account_id = desk.accounts[0][0]
    lookups = [
        ("order/item", "id={}", closing.order.id),
        ("order/items", "ids={}", entry.order.id),
        ("fill/item", "id={}", fill),
        ("fillFee/item", "id={}", fill),
        ("fillFee/deps", "masterid={}", fill),
        ("command/item", "id={}", command),
        ("fill/deps", "masterid={}", closing.order.id),
        ("command/deps", "masterid={}", entry.order.id),
        ("orderVersion/deps", "masterid={}", entry.order.id),
        ("executionReport/deps", "masterid={}", command),
        ("commandReport/ldeps", "masterids={}", command),
    ]
    for endpoint, query, target in lookups:  # found while held
        status, found = _get(venue, desk, endpoint, query.format(target))
        assert status == 200, endpoint
        assert found, endpoint
    clock.advance(60)
    venue.engine.finished.prune()

    for endpoint, query, target in lookups:
        forgotten = _get(venue, desk, endpoint, query.format(target))
        assert forgotten == _get(venue, desk, endpoint, query.format(never)), endpoint
    for listing in ("order/list", "fill/list", "fillFee/list", "command/list"):
        assert _get(venue, desk, listing, "") == (200, []), listing
    assert _get(venue, desk, "order/deps", f"masterid={account_id}") == (200, [])
    cancel = msgspec.json.encode({"orderId": entry.order.id})
    cancel_never = msgspec.json.encode({"orderId": never})
    assert msgspec.to_builtins(
        venue.handle("order/cancelorder", desk.session, "", cancel).payload
    ) == msgspec.to_builtins(
        venue.handle("order/cancelorder", desk.session, "", cancel_never).payload
    )


def test_working_orders_positions_cash_and_recent_orders_are_untouched() -> None:
    venue, desk, clock = _venue(sim_finished_order_retention_s=3_600.0)
    old = _pair(desk, 1, "sig-old")
    account_id, name = desk.accounts[0]
    entry_id = desk.entry(account_id, name, "sig-open")  # filled; its brackets work
    family = [venue.state.orders[entry_id]]
    family += [venue.state.orders[c] for c in family[0].children]
    working_ids = set().union(*(_ids_of(r) for r in family))
    clock.advance(3_000)
    recent = _pair(desk, 1, "sig-recent")
    held = {"open": _state_of(venue, desk, 0), "closed": _state_of(venue, desk, 1)}

    clock.advance(2 * DAY_S)  # the open family stays however old it is
    venue.engine.finished.prune()
    assert {r.order.id for r in old}.isdisjoint(venue.state.orders)
    assert {r.order.id for r in recent}.isdisjoint(venue.state.orders)
    assert working_ids <= set(venue.state.entities)
    assert [r.order.ordStatus for r in family] == ["Filled", "Working", "Working"]
    assert {"open": _state_of(venue, desk, 0), "closed": _state_of(venue, desk, 1)} == held

    # the brackets still work as an OCO, and once they are done the family is finished
    assert venue.set_price("MNQZ6", desk.price + 10)[1] == [family[1].order.id]
    assert [r.order.ordStatus for r in family] == ["Filled", "Filled", "Canceled"]
    assert venue.engine.finished.held == 3
    clock.advance(3_600)
    assert venue.engine.finished.prune() == 3
    assert working_ids.isdisjoint(venue.state.entities)
    position = venue.state.books[account_id].positions[desk.contract_id]
    assert (position.netPos, position.bought, position.sold) == (0, 1, 1)


def test_the_recent_of_two_pairs_survives_the_retention_of_the_older() -> None:
    venue, desk, clock = _venue(sim_finished_order_retention_s=3_600.0)
    old = _pair(desk, 0, "sig-old")
    clock.advance(1_800)
    recent = _pair(desk, 0, "sig-recent")
    clock.advance(1_800)
    venue.engine.finished.prune()
    assert {r.order.id for r in old}.isdisjoint(venue.state.orders)
    assert {r.order.id for r in recent} <= set(venue.state.orders)
    status, found = _get(venue, desk, "command/deps", f"masterid={recent[0].order.id}")
    assert (status, [c["clOrdId"] for c in found]) == (200, ["sig-recent"])


def test_beyond_the_count_limit_the_oldest_finished_go_first_once_ten_minutes_old() -> None:
    venue, desk, clock = _venue(sim_finished_orders_max=8)
    pairs = [_pair(desk, n % 2, f"sig-{n}") for n in range(3)]
    clock.advance(599)  # still within reach of a clOrdId lookup: kept beyond the limit
    assert venue.engine.finished.prune() == 0
    assert venue.engine.finished.held == 12
    clock.advance(1)
    assert venue.engine.finished.prune() == 4
    assert venue.engine.finished.held == 8
    assert {r.order.id for r in pairs[0]}.isdisjoint(venue.state.orders)
    assert {r.order.id for p in pairs[1:] for r in p} <= set(venue.state.orders)


def test_a_forgotten_partly_filled_order_leaves_no_trace_in_the_engine() -> None:
    venue, desk, clock = _venue(sim_finished_order_retention_s=60.0)
    account_id, name = desk.accounts[0]
    venue.engine.partial_fill_qty[account_id] = 1
    body = {
        "accountSpec": name,
        "accountId": account_id,
        "action": "Buy",
        "symbol": "MNQZ6",
        "orderQty": 3,
        "orderType": "Market",
        "isAutomated": True,
    }
    placed = venue.handle("order/placeorder", desk.session, "", msgspec.json.encode(body))
    order_id = msgspec.to_builtins(placed.payload)["orderId"]
    assert venue.state.orders[order_id].cum_qty == 1
    cancel = msgspec.json.encode({"orderId": order_id})
    assert venue.handle("order/cancelorder", desk.session, "", cancel).status == 200
    assert order_id in venue.engine.partly_filled(desk.contract_id)  # gone at the next price
    clock.advance(60)
    assert venue.engine.finished.prune() == 1
    assert order_id not in venue.engine.partly_filled(desk.contract_id)


def test_canceled_resting_orders_do_not_pile_up_in_the_books() -> None:
    venue, desk, _clock = _venue()
    account_id, name = desk.accounts[0]
    for n in range(3_000):
        body = {
            "accountSpec": name,
            "accountId": account_id,
            "action": "Buy",
            "symbol": "MNQZ6",
            "orderQty": 1,
            "orderType": "Limit",
            "price": desk.price - 50 - n % 40,
            "isAutomated": True,
        }
        placed = venue.handle("order/placeorder", desk.session, "", msgspec.json.encode(body))
        cancel = msgspec.json.encode({"orderId": msgspec.to_builtins(placed.payload)["orderId"]})
        venue.handle("order/cancelorder", desk.session, "", cancel)
    assert venue.engine.resting_entries(desk.contract_id) <= 2_048
    keeper = desk.entry(account_id, name, "sig-keep")
    take_profit = venue.state.orders[keeper].children[0]
    assert venue.set_price("MNQZ6", desk.price + 10)[1] == [take_profit]


def test_memory_held_per_order_stays_bounded() -> None:
    # settings read from the environment's names, as a user sets them
    environ = {"PHALANX_SIM_FINISHED_ORDER_RETENTION_S": "10", "PHALANX_SIM_REQUEST_LOG_MAX": "100"}
    # 10 pairs per simulated second: 100 pairs are within the retention at any time
    held = held_per_order(load_sim_settings(environ), 300, 600, accounts=5, pairs_per_s=10)
    # without the retention every order holds ~3.5 KB (its entities and their index)
    assert held.per_order < 64, held


def test_the_retention_settings_refuse_negative_values() -> None:
    with pytest.raises(ValueError, match="retention"):
        SimSettings(sim_finished_order_retention_s=-1)
    with pytest.raises(ValueError, match="retention"):
        SimSettings(sim_finished_orders_max=-1)
    with pytest.raises(ValueError, match="retention"):
        SimSettings(sim_finished_order_min_retention_s=-1)


async def test_the_running_simulator_forgets_in_the_background_and_answers_404() -> None:
    clock = ManualClock(start=1_790_000_000.0)
    settings = SimSettings(sim_finished_order_retention_s=60.0)
    async with running_simulator(settings, clock=clock) as sim:
        user = sim.create_user("alice", "pw", accounts=1)
        account = user.accounts[0]
        async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
            token = await http.post("/v1/auth/accesstokenrequest", json=login_body("alice", "pw"))
            headers = {"Authorization": f"Bearer {token.json()['accessToken']}"}
            placed = await http.post("/v1/order/placeoso", json=oso_body(account), headers=headers)
            entry_id = placed.json()["orderId"]
            contract_id = sim.state.orders[entry_id].info.contract.id
            body = {"accountId": account["id"], "contractId": contract_id, "admin": False}
            await http.post("/v1/order/liquidateposition", json=body, headers=headers)
            positions = await http.get("/admin/positions", params={"accountId": account["id"]})
            clock.advance(60)

            async def forgotten() -> dict[str, Any] | None:
                stats: dict[str, Any] = (await http.get("/admin/stats")).json()
                return stats if stats["ordersForgotten"] else None

            # the housekeeping task forgets once a second
            stats = await eventually(forgotten, what="the finished orders forgotten")
            assert (stats["ordersForgotten"], stats["orders"], stats["finishedOrders"]) == (4, 0, 0)
            gone = await http.get("/v1/order/item", params={"id": entry_id}, headers=headers)
            never = await http.get("/v1/order/item", params={"id": 99_999_999}, headers=headers)
            assert (gone.status_code, gone.text) == (never.status_code, never.text)
            assert gone.status_code == 404
            params = {"accountId": account["id"]}
            assert (await http.get("/admin/orders", params=params)).json() == []
            assert (await http.get("/admin/fills", params=params)).json() == []
            assert (await http.get("/admin/positions", params=params)).json() == positions.json()


def test_expired_tokens_leave_the_token_index_when_their_login_gets_a_new_one() -> None:
    venue, desk, clock = _venue(sim_token_lifetime_s=100.0)
    record = venue.state.users[venue.state.sessions[desk.session.token].user_id]
    for _ in range(50):  # a week of renewals, compressed
        clock.advance(150)
        session = venue.issue_session(record)
        venue.issue_session(record, session.session_id)  # a renewal
    assert len(venue.state.sessions) <= 4
    assert venue.authenticate(desk.session.token) is None
