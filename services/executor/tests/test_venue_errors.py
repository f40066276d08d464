"""Venue errors: each in one class (ADR-0055), and what the worker does with them (hole 5)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from phalanx_common import subjects
from phalanx_common.codec import decode
from phalanx_common.records import IntentRecord
from phalanx_sim import Simulator
from phalanx_sim.settings import SimSettings
from phalanx_tradovate.classes import FAILURE_REASONS, ErrorClass, classify
from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    LockoutError,
    OrderRejected,
    PenaltyError,
    ProtocolError,
    RequestTimeout,
    VenueError,
    VenueUnreachable,
)

SHAPES = [
    (PenaltyError("t", 5.0, endpoint="order/placeoso"), ErrorClass.RETRYABLE, 5.0),
    (PenaltyError("t", 5.0, True, endpoint="auth/accesstokenrequest"), ErrorClass.FINAL, 3600),
    (LockoutError(429, endpoint="order/placeoso"), ErrorClass.FINAL, 3600),
    (LockoutError(423, endpoint="order/deps"), ErrorClass.FINAL, 3600),
    (AuthError("Access is denied", endpoint="order/placeoso", status=401), ErrorClass.FINAL, 0),
    (AuthError("Invalid access token", endpoint="authorize", status=401), ErrorClass.RETRYABLE, 0),
    (VenueUnreachable("refused", endpoint="websocket"), ErrorClass.RETRYABLE, 0),
    (RequestTimeout("late", endpoint="order/placeoso"), ErrorClass.UNKNOWN, 0),
    (RequestTimeout("late", endpoint="order/deps", retry_safe=True), ErrorClass.RETRYABLE, 0),
    (ConnectionLost("dropped", endpoint="order/placeoso"), ErrorClass.UNKNOWN, 0),
    (
        ConnectionLost("not open", endpoint="order/placeoso", retry_safe=True),
        ErrorClass.RETRYABLE,
        0,
    ),
    (VenueError(500, endpoint="order/placeoso"), ErrorClass.UNKNOWN, 0),
    (VenueError(503, endpoint="order/deps", retry_safe=True), ErrorClass.RETRYABLE, 0),
    (VenueError(400, "Invalid request", endpoint="order/placeoso"), ErrorClass.FINAL, 0),
    (VenueError(404, endpoint="order/placeoso"), ErrorClass.FINAL, 0),
    (VenueError(200, "Operation failed", endpoint="order/placeorder"), ErrorClass.FINAL, 0),
    (ProtocolError("garbled", endpoint="order/placeoso"), ErrorClass.UNKNOWN, 0),
    (ProtocolError("garbled", endpoint="contract/find"), ErrorClass.RETRYABLE, 0),
]


@pytest.mark.parametrize(("exc", "cls", "block_s"), SHAPES, ids=lambda v: repr(v)[:40])
def test_every_http_and_ws_error_shape_has_one_class(
    exc: Any, cls: ErrorClass, block_s: float
) -> None:
    verdict = classify(exc, lockout_s=3600)
    assert (verdict.cls, verdict.block_s) == (cls, block_s)
    assert (verdict.ticket is not None) == (isinstance(exc, PenaltyError) and not exc.captcha)


def test_every_failure_reason_is_classified_and_unknown_ones_are_final() -> None:
    # the simulator's reasons and the API's enum are all in the table
    for reason in ("Unauthorized", "UnknownReason", "TooLate", "InvalidContract", "InvalidPrice",
                   "Unsupported", "SessionClosed", "MaxPosLimitReached"):  # fmt: skip
        assert reason in FAILURE_REASONS
    for reason, cls in FAILURE_REASONS.items():
        assert classify(OrderRejected(reason, "x")).cls is cls
    assert classify(OrderRejected("SomethingNew", "x")).cls is ErrorClass.FINAL
    retryable = {r for r, c in FAILURE_REASONS.items() if c is ErrorClass.RETRYABLE}
    assert retryable == {
        "AnotherCommandPending",
        "ExecutionProviderUnavailable",
        "NoQuote",
        "RiskCheckTimeout",
    }


@pytest.mark.integration
async def test_access_denied_for_one_account_ends_its_intent_with_the_brokers_reason(
    nats_url: str, redis_url: str, make_budget_rig: Any
) -> None:
    """Hole 5: a 401 "Access is denied" for one account is final, sent once, never looped."""
    settings = SimSettings(sim_foreign_account_mode="denied")
    async with Simulator(settings, port=0) as sim:
        rig = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=((70, 60),))
        try:
            foreign = sim.create_user("someone-else", "pw", accounts=1).accounts[0]
            intent = msgspec.structs.replace(
                rig.entry(0),
                intent_id="sig-denied",
                account_id=int(foreign["id"]),
                account_spec=str(foreign["name"]),
            )
            first = await rig.worker.execute(intent)
            again = await rig.worker.execute(intent)  # a redelivery of the batch
            entry = await (await rig.bus.key_value(subjects.Buckets.INTENTS)).get("sig-denied")
            record = decode(entry.value or b"", IntentRecord)
            sent = [r for r in sim.state.requests if r.endpoint.startswith("order/place")]
        finally:
            await rig.close()
    assert (first.state, again.state) == ("rejected", "duplicate")
    assert (record.state, record.reason) == ("rejected", "access-denied")
    assert len(sent) == 1


async def _refusing_socket(rig: Any, monkeypatch: pytest.MonkeyPatch, refusals: int) -> list[str]:
    """The login's socket answers ``RiskCheckTimeout`` to the first ``refusals`` orders.

    The simulator never gives this answer, so the fault is staged on the client side."""
    sock = await rig.pool.get(rig.login)
    real = sock.place_order
    tries: list[str] = []

    async def place_order(order: Any, *, p_ticket: str | None = None) -> Any:
        tries.append(order.clOrdId)
        if len(tries) <= refusals:
            raise OrderRejected("RiskCheckTimeout", "risk check timed out", endpoint="order/x")
        return await real(order, p_ticket=p_ticket)

    monkeypatch.setattr(sock, "place_order", place_order)
    return tries


@pytest.mark.integration
async def test_a_passing_refusal_is_tried_again_and_placed_once(
    nats_url: str, redis_url: str, make_budget_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Simulator(port=0) as sim:
        rig = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=((70, 60),))
        try:
            tries = await _refusing_socket(rig, monkeypatch, refusals=2)
            outcome = await rig.worker.execute(rig.entry(0))
            placed = [r for r in sim.state.orders.values() if r.order.parentId is None]
        finally:
            await rig.close()
    assert outcome.state == "accepted"
    assert len(tries) == 3
    assert len(placed) == 1


@pytest.mark.integration
async def test_a_passing_refusal_that_does_not_pass_ends_with_the_brokers_reason(
    nats_url: str, redis_url: str, make_budget_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Simulator(port=0) as sim:
        rig = await make_budget_rig(nats_url, redis_url, sim, accounts=1, login_windows=((70, 60),))
        try:
            tries = await _refusing_socket(rig, monkeypatch, refusals=100)
            intent = rig.entry(0)
            outcome = await rig.worker.execute(intent)
            again = await rig.worker.execute(intent)
            entry = await (await rig.bus.key_value(subjects.Buckets.INTENTS)).get(intent.intent_id)
            record = decode(entry.value or b"", IntentRecord)
        finally:
            await rig.close()
    assert (outcome.state, again.state) == ("rejected", "duplicate")
    assert (record.state, record.reason) == ("rejected", "RiskCheckTimeout")
    assert len(tries) == 3
