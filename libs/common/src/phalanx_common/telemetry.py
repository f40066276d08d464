"""W3C trace context carried in NATS headers, so one trace follows a signal end to end."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate

__all__ = ["extract_context", "inject_headers"]


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (``traceparent``/``tracestate``) to ``headers``."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """Return the trace context carried by message headers (empty when none)."""
    return propagate.extract(dict(headers or {}))
