"""Structured logs: one JSON object per line with trace and span ids; secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from phalanx_common.lifecycle import secrets_of
from phalanx_common.logs import Scrubber, setup_logging
from phalanx_common.settings import CommonSettings


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def _lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_the_current_span(out: io.StringIO) -> None:
    setup_logging("INFO", "json", service="ingest", stream=out)
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("phalanx.test")
    log.info("outside a span")
    with tracer.start_as_current_span("work") as span:
        log.warning("inside %s", "a span")
        ctx = span.get_span_context()
    outside, inside = _lines(out)
    assert outside["msg"] == "outside a span"
    assert outside["level"] == "INFO"
    assert outside["logger"] == "phalanx.test"
    assert outside["service"] == "ingest"
    assert outside["ts"].endswith("Z")
    assert "trace_id" not in outside
    assert inside["msg"] == "inside a span"
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")


def test_credentials_and_registered_secrets_are_scrubbed(out: io.StringIO) -> None:
    setup_logging("INFO", "json", secrets=["s3cr3t-admin-token"], stream=out)
    log = logging.getLogger("phalanx.test")
    log.info("nats: disconnected from %s", "nats://phalanx:hunter2@nats-0:4222")
    log.info("redis at redis://:r3dispass@redis:6379/0 and tls://tok3n@nats:4222")
    log.info("headers Authorization: Bearer eyJhbGciOi.abc-def and admin s3cr3t-admin-token")
    log.info('login body {"password": "pa55word!", "sec": "c1ientsecret", "name": "bob"}')
    log.info("POST /webhooks/strat-1/Wh00kSecretValue failed; token=abcdef123456")
    try:
        raise RuntimeError("connect nats://u:traceback-pass@host failed")
    except RuntimeError:
        log.exception("boom")
    text = out.getvalue()
    for secret in (
        "hunter2",
        "r3dispass",
        "tok3n",
        "eyJhbGciOi",
        "s3cr3t-admin-token",
        "pa55word!",
        "c1ientsecret",
        "Wh00kSecretValue",
        "abcdef123456",
        "traceback-pass",
    ):
        assert secret not in text, secret
    lines = _lines(out)
    assert lines[0]["msg"] == "nats: disconnected from nats://***@nats-0:4222"
    assert '"name": "bob"' in lines[3]["msg"]  # what is not a secret stays readable
    assert "/webhooks/strat-1/***" in lines[4]["msg"]
    assert "RuntimeError" in lines[5]["exc"]


def test_text_format_is_readable_and_scrubbed(out: io.StringIO) -> None:
    setup_logging("DEBUG", "text", stream=out)
    logging.getLogger("phalanx.test").debug("to nats://a:b@host:4222")
    line = out.getvalue().strip()
    assert line.endswith("DEBUG phalanx.test: to nats://***@host:4222")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="json"):
        setup_logging("INFO", "yaml")


def test_short_literal_secrets_are_not_masked_everywhere() -> None:
    assert Scrubber(["ok"])("ok, looks fine") == "ok, looks fine"


def test_a_services_own_secrets_are_registered_for_scrubbing() -> None:
    settings = CommonSettings(
        admin_token="adm1n-t0ken", token_keys="k1:QUJDREVGR0g=,k2:SUpLTE1OT1A="
    )
    found = secrets_of(settings)
    assert "adm1n-t0ken" in found
    assert {"QUJDREVGR0g=", "SUpLTE1OT1A="} <= set(found)
    scrub = Scrubber(found)
    assert scrub("key QUJDREVGR0g= and adm1n-t0ken") == "key *** and ***"
