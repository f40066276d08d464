"""``phalanx-bench --quick`` end to end: every process real, the report and chart written.

No timing asserts: what is checked is that every part of the report is there and consistent
(each fan-out compared with its own floor, one venue call per account per signal, no violation,
CPU seconds of every service), which a broken benchmark would not produce.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phalanx_bench.run import main

_INTENT_STEPS = {
    "claim create",
    "claim move",
    "outcome publish",
    "permit",
    "venue send",
    "account queue: enter",
    "account queue: leave",
}


@pytest.mark.timeout(240)
def test_quick_run_writes_a_consistent_report_and_a_chart(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"

    main(["--quick", "--profile", "--out", str(out)])

    report = json.loads(out.read_text())
    floors = {(f["intents"], f["logins"]): f for f in report["floors"]}
    by_name = {s["name"]: s for s in report["scenarios"]}
    fanouts = [s for s in report["scenarios"] if "floor_p50_s" in s]
    assert report["machine"]["cores"] >= 1
    assert report["machine"]["cpu_model"]
    assert {s["name"] for s in fanouts} == {"25x25", "25x25 venue 50±20ms"}
    for s in fanouts:
        floor = floors[(s["accounts"], s["logins"])]
        assert s["floor_p50_s"] == floor["p50_s"] > 0
        assert s["ratio_p50"] == round(s["p50_s"] / floor["p50_s"], 2)
        assert s["p50_s"] <= s["p90_s"] <= s["p99_s"] <= s["max_s"]
        assert s["broker_calls_per_account"] == 1.0
        assert s["violations"] == 0
        assert {"executor-0", "ingest", "sim", "nats-server", "redis-server"} <= set(s["cpu_s"])
        profile = s["executor_profile"]["executor-0"]  # --profile: py-spy during the fan-out
        if "ermission" not in profile.get("error", ""):  # else py-spy may not trace here
            assert profile["samples"] > 0, profile
            assert set(profile["shares"]) & _INTENT_STEPS, profile  # a short run: few samples
            assert abs(sum(profile["shares"].values()) - 1) < 0.01
    assert by_name["25x25 venue 50±20ms"]["venue_latency_ms"] == "50±20"
    assert by_name["first-order"]["to_first_order_at_venue"]["p50_s"] >= 0
    soak = by_name["soak"]
    assert soak["completed"] == soak["signals"] > 0
    assert soak["samples"]
    assert all("executor-0" in sample["rss_mib"] for sample in soak["samples"])
    webhook = by_name["webhook 100/s"]
    assert webhook["statuses"]
    assert all(code.startswith("2") for code in webhook["statuses"])
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
