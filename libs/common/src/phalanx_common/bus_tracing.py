"""Trace spans around the bus: a PRODUCER span per publish, a CONSUMER span per handled message.

The publish's span travels in the message's headers (W3C trace context), so the handler's span is
its child and one trace follows a signal from the webhook to the last fill (ADR-0070).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, SpanKind

from phalanx_common.telemetry import extract_context, inject_headers, span

__all__ = ["MSG_ID", "consuming", "publishing"]

MSG_ID = "Nats-Msg-Id"


def _family(subject: str) -> str:
    """A subject's first token: span names stay few (``orders.<account>`` -> ``orders``)."""
    return subject.split(".", 1)[0]


@contextlib.contextmanager
def publishing(
    subject: str, msg_id: str, parent: otel_context.Context | None = None
) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one publish (a child of ``parent``, default: the current context);
    yields the headers to send: its trace context and ``Nats-Msg-Id``."""
    attributes = {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": subject,
        "messaging.message.id": msg_id,
    }
    with span(f"publish {_family(subject)}", attributes, kind=SpanKind.PRODUCER, parent=parent):
        headers = inject_headers({})
        headers[MSG_ID] = msg_id
        yield headers


@contextlib.contextmanager
def consuming(msg: Msg, stream: str, consumer: str) -> Iterator[Span]:
    """A CONSUMER span for handling one message, a child of the span that published it (the
    trace context in its headers); current while it runs."""
    attributes: dict[str, str | int] = {
        "messaging.system": "nats",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": msg.subject,
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": (msg.headers or {}).get(MSG_ID, ""),
    }
    if msg.metadata is not None and msg.metadata.sequence is not None:
        attributes["messaging.nats.stream_sequence"] = int(msg.metadata.sequence.stream)
        attributes["messaging.nats.delivery_count"] = int(msg.metadata.num_delivered or 1)
    parent = extract_context(msg.headers)
    with span(f"process {stream}", attributes, kind=SpanKind.CONSUMER, parent=parent) as current:
        yield current
