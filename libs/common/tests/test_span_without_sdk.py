"""With tracing off, spans still carry their caller's trace into what they publish (ADR-0145).

The shortcut in :func:`phalanx_common.telemetry.span` hands out the current span instead of
making the no-op tracer's (identical) span current; what a message inside carries must not
change.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace

from phalanx_common.telemetry import extract_context, inject_headers, span

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def _tracing_off() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider), "an SDK is on"


def test_a_span_under_a_message_parent_publishes_that_trace() -> None:
    parent = extract_context({"traceparent": TRACEPARENT})
    with span("execute batch", parent=parent), span("execute intent", {"i": "1"}) as inner:
        assert inner.get_span_context().trace_id == int(TRACEPARENT[3:35], 16)
        with span("venue placeoso"):
            assert inject_headers({})["traceparent"] == TRACEPARENT
    assert not trace.get_current_span().get_span_context().is_valid
    assert "traceparent" not in inject_headers({})


def test_outside_any_trace_a_span_adds_no_trace_context() -> None:
    with span("plan signal") as current:
        assert not current.get_span_context().is_valid
        assert "traceparent" not in inject_headers({})


def test_an_exception_in_a_span_is_raised_on_and_the_caller_trace_restored() -> None:
    with span("execute batch", parent=extract_context({"traceparent": TRACEPARENT})):
        with pytest.raises(ValueError, match="boom"), span("execute intent"):
            raise ValueError("boom")
        assert inject_headers({})["traceparent"] == TRACEPARENT
