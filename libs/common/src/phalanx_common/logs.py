"""Logging for every service: one JSON object per line (or a readable line), secrets scrubbed.

A JSON record has ``ts`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``msg``,
``service``, and ``trace_id``/``span_id`` when an OpenTelemetry span is current, plus ``exc``
(the traceback) when one was logged. Before anything is written, credentials in URLs
(``nats://user:pass@…``, ``redis://:pass@…``), bearer tokens, ``password=``/``token=``-style
pairs, webhook URL secrets and the literal secrets a service registers are replaced by ``***``
(ADR-0076).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from opentelemetry import trace

__all__ = ["WIRE_LOGGERS", "JsonFormatter", "Scrubber", "TextFormatter", "setup_logging"]

MASK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user[:password]@ in any URL: nats://u:p@host, redis://:p@host, nats://token@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]*@"), r"\1" + MASK + "@"),
    # Authorization: Bearer <token> / Basic <credentials>
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK),
    # password=…, "token": "…", access_token=…, secret: …, sec=…, api_key=…
    (
        re.compile(
            r"(?i)((?:\"|')?\b(?:[a-z_]*password|passwd|[a-z_]*secret|[a-z_]*token|"
            r"api_?key|sec|authorization|token_keys)(?:\"|')?\s*[:=]\s*(?:\"|')?)"
            r"([^\"'\s,&;}]+)"
        ),
        r"\1" + MASK,
    ),
    # the secret in a webhook URL: /webhooks/<strategy>/<secret>
    (re.compile(r"(/webhooks/[^/\s]+/)[^/\s?\"']+"), r"\1" + MASK),
    # the venue's WebSocket authorize frame: "authorize\n<id>\n\n<access token>" (ADR-0119)
    (re.compile(r"(authorize(?:\\n|\n)\d+(?:\\n|\n){2})[^\s'\"\\]+"), r"\1" + MASK),
)

# Libraries that log raw wire traffic at DEBUG (WebSocket frames carry the venue's access token
# in ``authorize``; HTTP headers carry credentials): never below INFO, whatever the root level.
WIRE_LOGGERS = ("websockets", "httpcore", "hpack", "h11")


class Scrubber:
    """Replaces credentials in text by ``***``.

    Args:
        secrets: Literal values to mask wherever they appear (values shorter than 6 characters
            are ignored: masking them would garble ordinary words).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def _trace_ids() -> tuple[str, str] | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, service: str = "", scrubber: Scrubber | None = None) -> None:
        super().__init__()
        self._service = service
        self._scrub = scrubber or Scrubber()

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        out: dict[str, str] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": self._scrub(record.getMessage()),
        }
        if self._service:
            out["service"] = self._service
        ids = _trace_ids()
        if ids is not None:
            out["trace_id"], out["span_id"] = ids
        if record.exc_info:
            out["exc"] = self._scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = self._scrub(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> [trace=<id>]``, scrubbed: for a terminal."""

    def __init__(self, scrubber: Scrubber | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrubber or Scrubber()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = _trace_ids()
        if ids is not None:
            text += f" [trace={ids[0]}]"
        return self._scrub(text)


def setup_logging(
    level: str = "INFO",
    fmt: str = "json",
    service: str = "",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every logger through one handler on the root logger (replacing its handlers).

    Args:
        level: Root level (``INFO``, ``DEBUG``…).
        fmt: ``json`` (one object per line, the default) or ``text`` (readable; ``make run``).
        service: Written as ``service`` in JSON records.
        secrets: Literal values never to write (admin token, token keys…).
        stream: Where to write (stderr by default).

    Raises:
        ValueError: for an unknown ``fmt``.
    """
    scrubber = Scrubber(secrets)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(service, scrubber)
    elif fmt == "text":
        formatter = TextFormatter(scrubber)
    else:
        raise ValueError(f"log format must be 'json' or 'text', not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(max(root.level, logging.INFO))
    return handler
