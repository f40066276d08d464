"""What the templates render from the services' answers (the renderer alone)."""

from __future__ import annotations

from typing import Any

from phalanx_console.render import Renderer


def _signal(status: str) -> dict[str, Any]:
    return {
        "signal_id": "s1",
        "strategy_id": "st1",
        "status": status,
        "planner_rejected": "",
        "received_ns": 1_767_225_600_000_000_000,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "replay_of": "",
        "timings_ms": {
            "stored": 1.0,
            "planned": 2.0,
            "first_sent": None,
            "last_acknowledged": None,
        },
        "accounts": [
            {
                "account_id": 7,
                "outcome": "rejected",
                "reason": "<script>alert(1)</script>",
                "text": "",
                "order_id": None,
                "sent_ms": None,
                "acknowledged_ms": None,
            }
        ],
    }


def test_a_signal_still_executing_asks_again_and_a_finished_one_does_not() -> None:
    renderer = Renderer("https://grafana.example/explore?traceId={trace_id}")
    running = renderer.fragment("_signal_body.html", signal=_signal("executing"))
    assert 'hx-get="/signals/s1/body"' in running
    assert 'hx-trigger="every 1s"' in running
    for status in ("done", "rejected"):
        finished = renderer.fragment("_signal_body.html", signal=_signal(status))
        assert "hx-get" not in finished
        assert (
            "https://grafana.example/explore?traceId=0af7651916cd43dd8448eb211c80319c" in finished
        )


def test_values_from_the_services_are_escaped() -> None:
    html = Renderer().fragment("_signal_body.html", signal=_signal("done"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<a " not in html.split("Trace")[1].split("</dd>")[0]  # no trace URL: no link
