"""Traces: the OpenTelemetry SDK set up from the standard ``OTEL_*`` variables, and W3C trace
context carried in NATS headers, so one trace follows a signal end to end (ADR-0070).

:func:`configure_tracing` is called once by every service at start
(:func:`phalanx_common.lifecycle.run_service_main`). It does nothing unless
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and
``OTEL_SDK_DISABLED`` is not true, and ``OTEL_TRACES_EXPORTER`` is not ``none``); then it
installs a tracer provider that exports over OTLP/HTTP (protobuf) through a batch processor,
and instruments httpx and redis with the official instrumentations. FastAPI apps are
instrumented by :func:`instrument_app` (called by :class:`phalanx_common.http.HttpServer`).
Everything else (sampler, batch delays, headers, service name) is the SDK's own ``OTEL_*``
configuration. With tracing off, the API's no-op tracer still carries a trace context from
message to message, so a trace id that came in goes on.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    format_trace_id,
)

__all__ = [
    "TRACER_NAME",
    "SpanAttributes",
    "child_span",
    "configure_tracing",
    "current_trace_id",
    "extract_context",
    "inject_headers",
    "instrument_app",
    "scrub_url",
    "shutdown_tracing",
    "span",
    "tracer",
    "tracing_enabled",
    "webhook_root",
]

log = logging.getLogger(__name__)

SpanAttributes = Mapping[str, str | int | float | bool]

TRACER_NAME = "phalanx"
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Paths never traced: probes and scrapes would drown the traces that matter.
_UNTRACED_PATHS = "healthz,readyz,metrics"
# A webhook URL carries its secret as the last path segment, an OAuth redirect its code: never
# export either.
_WEBHOOK_SECRET = re.compile(r"(/webhooks/[^/?#]+/)[^/?#]+")
_SECRET_PARAMS = re.compile(
    r"([?&](?:code|state|token|access_token|refresh_token|secret|password|ticket)=)[^&#]*", re.I
)
_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")

_provider: Any = None  # the SDK's TracerProvider once configured (typed loosely: optional SDK)


def tracing_enabled() -> bool:
    """Whether the environment asks for traces to be exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(os.environ.get(name, "").strip() for name in _ENDPOINT_VARS)


def configure_tracing(service: str) -> bool:
    """Install the SDK for ``service`` (``service.name`` ``phalanx-<service>`` unless
    ``OTEL_SERVICE_NAME`` says otherwise); ``False`` (and nothing done) when tracing is off."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_enabled():
        return False
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported; exporting with http/protobuf", protocol)

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"phalanx-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("traces of %s exported over OTLP/HTTP", service)
    return True


def shutdown_tracing() -> None:
    """Export what is buffered and stop the exporter (idempotent; nothing when tracing is off)."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def instrument_app(app: FastAPI) -> None:
    """Trace an app's requests (server spans; probes and ``/metrics`` left out) when tracing
    is on; webhook secrets in the URL are replaced by ``{secret}`` in every span attribute."""
    if _provider is None or getattr(app, "_phalanx_traced", False):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=_scrub_secret,
        tracer_provider=_provider,
        excluded_urls=_UNTRACED_PATHS,
        exclude_spans=["receive", "send"],
    )
    app._phalanx_traced = True  # type: ignore[attr-defined]


def scrub_url(value: str) -> str:
    """``value`` (a URL or path) with a webhook secret and secret query values replaced."""
    value = _WEBHOOK_SECRET.sub(r"\1{secret}", value)
    return _SECRET_PARAMS.sub(r"\1{redacted}", value)


def _scrub_secret(span: Span, scope: dict[str, Any]) -> None:
    if not span.is_recording():
        return
    for name in _URL_ATTRIBUTES:
        value = getattr(span, "attributes", {}).get(name)
        if isinstance(value, str) and scrub_url(value) != value:
            span.set_attribute(name, scrub_url(value))


_tracer: trace.Tracer | None = None


# ``trace.get_tracer_provider()`` looks ``OTEL_PYTHON_TRACER_PROVIDER`` up in ``os.environ`` on
# every call while no provider is set: with several spans an intent, that lookup was ~3 % of the
# executor's CPU. The API keeps the installed provider in ``_TRACER_PROVIDER`` (``None`` until one
# is set); when the attribute is missing (another API version) the public call is used. A
# provider named by that variable (read when this module is imported) also takes the public call.
_NO_PROVIDER_YET = object()
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _tracing_off() -> bool:
    """No SDK is installed: every span is the no-op tracer's."""
    installed = getattr(trace, "_TRACER_PROVIDER", _NO_PROVIDER_YET)
    if installed is None and not _PROVIDER_FROM_ENV:
        return True
    return isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def tracer() -> trace.Tracer:
    """Phalanx's tracer (the no-op one while tracing is off).

    Looked up once: ``trace.get_tracer`` builds a new proxy on every call, which cost the
    executor a measurable share of each intent (ADR-0145). A proxy taken before the SDK is
    installed hands its spans to the SDK's tracer once it is.
    """
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


@contextmanager
def span(
    name: str,
    attributes: SpanAttributes | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
) -> Iterator[Span]:
    """A span around a block, current while it runs (a child of ``parent`` when given, else of
    the current span); an exception is recorded on it and raised on.

    With tracing off and no ``parent``, the no-op tracer's span *is* the current span, and
    making it current changes nothing: it is handed out as it is, without the context
    switches, which were a large share of the executor's time per intent (ADR-0145).
    """
    if parent is None and _tracing_off():
        yield trace.get_current_span()
        return
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


@contextmanager
def child_span(name: str, attributes: SpanAttributes | None = None) -> Iterator[Span]:
    """A span only inside a trace: outside one (e.g. replaying a stream) none is started."""
    current = trace.get_current_span()
    if not current.get_span_context().is_valid:
        yield current
        return
    with span(name, attributes) as started:
        yield started


@contextmanager
def webhook_root(headers: Mapping[str, str]) -> Iterator[Span]:
    """The trace of one webhook: under the request's server span when FastAPI is traced, else
    under the sender's ``traceparent``; with neither, a new trace. With tracing off a new trace
    still gets an id (a non-recording span), so the signal, its log and its messages carry one.
    """
    if trace.get_current_span().get_span_context().is_valid:
        parent = None
    else:
        parent = extract_context(headers)
        if not trace.get_current_span(parent).get_span_context().is_valid and _provider is None:
            parent = trace.set_span_in_context(_new_trace(), parent)
    with span("webhook signal", kind=SpanKind.INTERNAL, parent=parent) as current:
        yield current


def _new_trace() -> NonRecordingSpan:
    context = SpanContext(
        trace_id=int.from_bytes(secrets.token_bytes(16), "big") or 1,
        span_id=int.from_bytes(secrets.token_bytes(8), "big") or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    return NonRecordingSpan(context)


def current_trace_id() -> str:
    """The current trace id as 32 hex digits ("" outside any trace)."""
    context = trace.get_current_span().get_span_context()
    return format_trace_id(context.trace_id) if context.is_valid else ""


def inject_headers(
    headers: dict[str, str], context: otel_context.Context | None = None
) -> dict[str, str]:
    """Add the trace context (``traceparent``/``tracestate``) of ``context`` (default: the
    current one) to ``headers``."""
    propagate.inject(headers, context=context)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """Return the trace context carried by message headers (empty when none)."""
    return propagate.extract(dict(headers or {}))
