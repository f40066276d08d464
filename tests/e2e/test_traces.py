"""One webhook is one trace: every service, run as its own process with the standard ``OTEL_*``
variables, exports its spans over OTLP/HTTP to a receiver the test runs (ADR-0070).

A TradingView-style webhook (no ``traceparent``) for two accounts yields, in one trace: ingest's
request and webhook spans, a publish to SIGNALS, the planner's consume and plan spans, a batch
publish, the worker's consume, batch and one accepted ``execute intent`` span per account (with
its permit wait and venue call), the fills and the ledger's projection of each. Every consume
span's parent is the publish span of its message; the trace has one root; the webhook secret is
in no exported attribute; the webhook's answer and the signal log name the trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from phalanx_bench.seed import front_month, seed
from phalanx_bench.system import System
from phalanx_testing.otlp import OtlpReceiver, ReceivedSpan, otlp_receiver
from phalanx_testing.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest_asyncio.fixture
async def system(receiver: OtlpReceiver) -> AsyncIterator[System]:
    running = System(
        executors=1,
        shards=4,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s of a span's end
        },
    )
    try:  # a start that fails half-way still stops what it started
        await asyncio.to_thread(running.start)
        yield running
    finally:
        await asyncio.to_thread(running.stop)


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def _ancestors(spans: list[ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain: list[ReceivedSpan] = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def _consumed_under_published(spans: list[ReceivedSpan]) -> None:
    """Every message consumed is a child of the span that published it."""
    consumed = [s for s in spans if s.kind == "CONSUMER"]
    assert {s.service for s in consumed} >= {"phalanx-executor", "phalanx-ledger"}
    by_id = {s.span_id: s for s in spans}
    for consume in consumed:
        publish = by_id[consume.parent_span_id]
        assert publish.kind == "PRODUCER", (consume, publish)
        subject = publish.attributes["messaging.destination.name"]
        assert subject == consume.attributes["messaging.destination.name"]
        assert (
            publish.attributes["messaging.message.id"] == consume.attributes["messaging.message.id"]
        )


def _worker_spans(spans: list[ReceivedSpan], plan: ReceivedSpan, accounts: set[int]) -> None:
    """The worker: each batch under its consume span, one accepted intent span per account,
    each with its permit wait and venue call."""
    by_id = {s.span_id: s for s in spans}
    # each with its permit wait and venue call
    batches = [s for s in spans if s.name == "execute batch"]
    assert batches
    for batch in batches:
        assert by_id[batch.parent_span_id].kind == "CONSUMER"
        assert plan in _ancestors(spans, batch)
    intents = [s for s in spans if s.name == "execute intent"]
    assert {s.attributes["phalanx.account_id"] for s in intents} == accounts
    accepted = [s for s in intents if s.attributes.get("phalanx.outcome") == "accepted"]
    assert sorted(s.attributes["phalanx.account_id"] for s in accepted) == sorted(accounts)
    for intent in accepted:
        assert by_id[intent.parent_span_id].name == "execute batch"
        below = _children(spans, intent)
        assert any(s.name == "permit wait" for s in below), intent
        venue = [s for s in below if s.kind == "CLIENT" and s.name.startswith("venue ")]
        assert venue, intent
        assert all(
            s.attributes["phalanx.account_id"] == intent.attributes["phalanx.account_id"]
            for s in venue
        )


def _fills_in_their_trace(spans: list[ReceivedSpan]) -> None:
    """Fills: each in the trace of the request that placed its order, projected by the ledger."""
    for projection in (s for s in spans if s.name == "project fill"):
        assert projection.service == "phalanx-ledger"
        chain = _ancestors(spans, projection)
        assert chain[0].kind == "CONSUMER"
        fill = next(s for s in chain if s.name == "fill")
        assert fill.service == "phalanx-executor"
        placing = next(s for s in chain if s.name == "execute intent")
        assert (
            placing.attributes["phalanx.account_id"] == projection.attributes["phalanx.account_id"]
        )


async def test_a_webhook_is_one_trace_from_ingest_to_the_ledger(
    system: System, receiver: OtlpReceiver
) -> None:
    endpoints = system.endpoints
    seeded = await seed(endpoints, logins=1, accounts_per_login=2)
    accounts = set(seeded.account_ids)
    async with httpx.AsyncClient(timeout=10) as http:

        async def connected() -> bool:
            health = (await http.get(system.executor_url(0) + "/healthz")).json()
            return int(health["logins_connected"]) == 1

        await eventually(connected, timeout=30, what="the login connected")
        price = {"symbol": front_month(), "price": 21000}
        (await http.post(endpoints.sim + "/admin/prices", json=price)).raise_for_status()
        answer = await http.post(
            seeded.webhook_url, json={"ticker": "MNQ1!", "action": "buy", "quantity": 1}
        )
        assert answer.status_code == 200, answer.text
        trace_id = answer.json()["trace_id"]
        assert len(trace_id) == 32
        assert int(trace_id, 16) != 0

        def whole_trace() -> list[ReceivedSpan] | None:
            spans = [s for s in receiver.spans if s.trace_id == trace_id]
            projected = {
                s.attributes.get("phalanx.account_id") for s in spans if s.name == "project fill"
            }
            ids = {s.span_id for s in spans}
            complete = all(s.parent_span_id in ids for s in spans if s.parent_span_id)
            return spans if projected >= accounts and complete else None

        found = await eventually(whole_trace, timeout=30, what="the trace, down to the ledger")
        assert found is not None
        spans = found
        signal_id = answer.json()["id"]
        logged = await http.get(
            f"{endpoints.ingest}/admin/signals/{signal_id}",
            headers={"Authorization": f"Bearer {endpoints.admin_token}"},
        )
        assert logged.json()["trace_id"] == trace_id

    # every service took part, and the trace has one root: ingest's request span
    assert {s.service for s in spans} >= {"phalanx-ingest", "phalanx-executor", "phalanx-ledger"}
    (root,) = [s for s in spans if not s.parent_span_id]
    assert (root.service, root.kind) == ("phalanx-ingest", "SERVER")
    (webhook,) = [s for s in spans if s.name == "webhook signal"]
    assert webhook.parent_span_id == root.span_id
    assert webhook.attributes["phalanx.signal_id"] == signal_id

    _consumed_under_published(spans)
    by_id = {s.span_id: s for s in spans}

    # the planner: SIGNALS consumed, the signal planned inside it, batches published from it
    (plan,) = [s for s in spans if s.name == "plan signal"]
    planner_consume = by_id[plan.parent_span_id]
    assert planner_consume.kind == "CONSUMER"
    assert by_id[planner_consume.parent_span_id].service == "phalanx-ingest"
    batch_publishes = [
        s for s in _children(spans, plan) if s.kind == "PRODUCER" and s.name == "publish exec"
    ]
    assert batch_publishes

    _worker_spans(spans, plan, accounts)

    _fills_in_their_trace(spans)

    # the webhook's secret is in no exported attribute (its URL is scrubbed)
    secret = seeded.webhook_url.rstrip("/").rsplit("/", 1)[1]
    everything = [str(v) for s in receiver.spans for v in s.attributes.values()]
    assert not [v for v in everything if secret in v]
    assert any("/webhooks/" in v and "{secret}" in v for v in everything)
