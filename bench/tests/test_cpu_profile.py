"""``phalanx-bench --profile``: py-spy's samples put in the steps of an intent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from phalanx_bench.cpu_profile import CATEGORIES, Profiler, categorize

_LOOP = "Runner.run (asyncio/runners.py:118)"
_WORKER = "BatchWorker._execute (phalanx_executor/worker.py:265)"


def test_each_sample_goes_to_the_first_category_in_its_stack() -> None:
    stacks = {
        # the claim's NATS request: the step, not the client it uses
        f"{_LOOP};{_WORKER};IntentStore.claim (phalanx_executor/intents.py:82);"
        "Client.request (nats/aio/client.py:1142)": ("claim create", 30),
        f"{_LOOP};{_WORKER};BatchWorker._still_owner (phalanx_executor/worker.py:452);"
        "IntentStore.verify (phalanx_executor/intents.py:98)": ("send-time claim check", 10),
        # enter and enter_and_ahead are told apart
        f"{_LOOP};AccountOrder.enter (phalanx_executor/account_order.py:57)": (
            "account queue: enter",
            7,
        ),
        f"{_LOOP};AccountOrder.enter_and_ahead (phalanx_executor/account_order.py:66)": (
            "account queue: turn read",
            5,
        ),
        # a view update made while reading the venue's frames is the reading's
        f"{_LOOP};TradovateSocket._read (phalanx_tradovate/ws.py:267);"
        "VenueView.submit (phalanx_executor/venue_view.py:278)": (
            "venue events in: frames and view",
            20,
        ),
        f"{_LOOP};Client._flusher (nats/aio/client.py:2363)": (
            "NATS client: writing, and uvloop after it",
            8,
        ),
        _LOOP: ("event loop (I/O wait and callbacks)", 12),
        f"{_LOOP};token_hex (secrets.py:59)": ("other: token_hex", 3),
    }
    lines = [f"{stack} {count}\n" for stack, (_, count) in stacks.items()]
    lines += ["\n", "not a sample line\n"]

    samples, shares = categorize(lines)

    total = sum(count for _, count in stacks.values())
    assert samples == total
    expected = {name: round(count / total, 4) for name, count in stacks.values()}
    assert shares == expected
    assert list(shares) == sorted(shares, key=lambda name: -shares[name])  # largest first
    named = {name for name, _ in CATEGORIES}
    assert named >= set(expected) - {"event loop (I/O wait and callbacks)", "other: token_hex"}


_BUSY = textwrap.dedent(
    """
    import sys, time

    class IntentStore:
        def claim(self):
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass

    store = IntentStore()
    print("ready", flush=True)
    while True:
        store.claim()
    """
)


def test_a_real_process_is_sampled_and_its_busy_step_named(tmp_path: Path) -> None:
    if Profiler.executable() is None:
        pytest.fail("py-spy is not installed: it is a dependency of phalanx-bench[system]")
    script = tmp_path / "busy.py"
    script.write_text(_BUSY)
    busy = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None
        assert busy.stdout.readline().strip() == b"ready"
        profiler = Profiler({"busy": busy.pid}, tmp_path / "profiles", "case")
        profiler.start()
        time.sleep(1.5)
        report = profiler.stop()
    finally:
        busy.kill()
        busy.wait()
    result = report["busy"]
    if "error" in result and "ermission" in result["error"]:
        pytest.skip(f"py-spy may not trace here: {result['error']}")
    assert "error" not in result, result
    assert result["samples"] > 0
    assert Path(result["raw"]).read_text().count("IntentStore.claim") > 0
    assert max(result["shares"], key=result["shares"].__getitem__) == "claim create"
