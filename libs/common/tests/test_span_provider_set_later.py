"""``span`` notices a tracer provider installed after spans were already made without one.

The check that tracing is off reads the API's installed provider instead of calling
``trace.get_tracer_provider()`` (an ``os.environ`` lookup per span). The global provider can be
set once per process, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from phalanx_common.telemetry import span

    with span("before") as before:
        assert not before.is_recording(), "a span was recorded with no provider"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with span("after", {"k": "v"}) as after:
        assert after.is_recording(), "the provider installed later is not used"
    print(",".join(s.name for s in exporter.get_finished_spans()))
    """
)


def test_a_provider_installed_after_the_first_spans_records_the_next() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "after"
