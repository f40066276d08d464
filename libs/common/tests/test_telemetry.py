"""Tracing is configured only by the standard OTEL_* variables, and secrets never reach a span."""

from __future__ import annotations

import pytest

from phalanx_common.telemetry import scrub_url, tracing_enabled


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://t:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://t:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_with_an_endpoint(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing_enabled() is enabled


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("/webhooks/strat-1/s3cr3t", "/webhooks/strat-1/{secret}"),
        (
            "http://127.0.0.1:8000/webhooks/strat-1/s3cr3t?x=1",
            "http://127.0.0.1:8000/webhooks/strat-1/{secret}?x=1",
        ),
        (
            "/oauth/callback?code=abc123&state=xyz&ok=1",
            "/oauth/callback?code={redacted}&state={redacted}&ok=1",
        ),
        ("/oauth/begin?ticket=t1cket", "/oauth/begin?ticket={redacted}"),
        ("/admin/strategies?limit=5", "/admin/strategies?limit=5"),
    ],
)
def test_secrets_in_urls_are_replaced(url: str, scrubbed: str) -> None:
    assert scrub_url(url) == scrubbed
