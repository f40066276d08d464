"""A p-ticket storm on one login and a 429 lockout on another, during one fan-out.

Three logins x three accounts, the whole system as processes; the venue allows 8 requests per
login in any 4 s, the executor budgets 6 per 4.5 s. Login "storm" gets a penalty storm (its next
requests are answered with p-tickets of 1 s). Login "locked" is driven into a lockout by another
client of the same login (the test's own session spends the budget, ignores the penalty and is
locked out: 4 s, restarted by every request during it) just before the signal, so the executor
walks into a lockout it cannot know of.

Must hold: the storm is honoured (every ticket used and counted as a block of the login, every
account of "storm" placed once); the requests of "locked" already on their way when the venue
first answers 429 go into the lockout (the executor cannot know of it sooner), then nothing of
that login goes out until the venue's lockout is over, and its accounts are placed after it (the
stopped requests were handed back, ADR-0111); the third login
trades at once, never waiting for the other two; no violation at the venue other than the
test's own and that one request.

Exits first after a block, at the permit level (real Redis): services/executor/tests/
test_permits.py (a short budget) and test_permit_fairness.py (a locked-out login's waiters never
delay another login's); the block case is ``test_waiters_of_a_blocked_login_are_served_exits_first
_when_the_block_ends`` in services/executor/tests/test_permits.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from tests.faults.rig_tokens import PRICE, FaultRig, fault_system, until

from phalanx_sim.testing import login_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LOGINS = 3
ACCOUNTS_PER_LOGIN = 3
VENUE_LOCKOUT_S = 4.0
STORM_TICKETS = ACCOUNTS_PER_LOGIN  # the login's requests of one fan-out


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultRig]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    env = {
        "PHALANX_SIM_LIMIT_PER_MINUTE": "8",
        "PHALANX_SIM_LIMIT_MINUTE_S": "4",
        "PHALANX_SIM_PENALTY_STRIKES": "1",
        "PHALANX_SIM_LOCKOUT_S": str(VENUE_LOCKOUT_S),
        "PHALANX_LOGIN_WINDOWS": "[[6, 4.5]]",
        # the executor waits out a lockout a little longer than the venue's
        "PHALANX_LOCKOUT_S": str(VENUE_LOCKOUT_S + 1.5),
    }
    async with fault_system(
        tmp_path, logins=LOGINS, accounts_per_login=ACCOUNTS_PER_LOGIN, extra_env=env
    ) as running:
        yield running


async def _lock_out(rig: FaultRig, login: str) -> int:
    """Spend ``login``'s venue budget from another session until the venue locks it out."""
    password = f"pw-{login}"  # as phalanx_bench.seed creates it
    async with httpx.AsyncClient(base_url=rig.endpoints.sim + "/v1", timeout=10) as venue:
        answer = await venue.post("/auth/accesstokenrequest", json=login_body(login, password))
        token = answer.json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        for sent in range(1, 40):
            resp = await venue.get("/account/list", headers=headers)
            if resp.status_code == 429:
                return sent
    raise AssertionError(f"{login} was not locked out")


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _sample(metrics: str, name: str, login: str) -> float:
    """One login's value of a counter in Prometheus' text format (0 when absent)."""
    prefix = f'{name}{{login="{login}"}} '
    values = [
        float(line[len(prefix) :]) for line in metrics.splitlines() if line.startswith(prefix)
    ]
    return values[0] if values else 0.0


def _body(n: int) -> dict[str, Any]:
    return {
        "ticker": "MNQ1!",
        "action": "buy",
        "quantity": 1,
        "takeProfit": {"limitPrice": PRICE + 40},
        "stopLoss": {"stopPrice": PRICE - 20},
        "extras": {"n": n},
    }


async def test_a_storm_and_a_lockout_are_honoured_and_leave_the_other_login_alone(
    rig: FaultRig,
) -> None:
    storm, locked, free = rig.seeded.logins
    await rig.ready()
    await rig.strategy(max_entry_age_s=60, rate_limit_per_min=10_000)
    await rig.fault(userId=rig.user_ids[storm], penaltyCount=STORM_TICKETS, penaltyTimeS=1.0)
    test_requests = await _lock_out(rig, locked)
    violations_before = (await rig.violations())["byLogin"].get(str(rig.user_ids[locked]), 0)
    signal_id = await rig.signal(_body(1))

    def of(entry: dict[str, Any], login: str) -> dict[int, str]:
        return {
            a["account_id"]: a["outcome"]
            for a in entry.get("accounts", [])
            if a["account_id"] in rig.accounts_of[login]
        }

    async def free_done() -> bool:
        return set(of(await rig.entry(signal_id), free).values()) == {"placed"}

    await until(free_done, 30, f"{free} placed")
    # the free login did not wait for the locked one: that one is still locked out
    locked_then = of(await rig.entry(signal_id), locked)
    entry = await rig.outcome(signal_id, timeout_s=60)

    # -- the storm: honoured, every ticket used, every account placed once
    faults = (await rig.http.get(rig.endpoints.sim + "/admin/faults")).json()
    assert faults == [], faults  # every ticket of the storm was handed out
    metrics = (await rig.http.get(rig.system.executor_url(0) + "/metrics")).text
    penalties = _sample(metrics, "phalanx_venue_penalties_total", storm)
    assert penalties == STORM_TICKETS, penalties  # each one honoured: the login blocked
    assert set(of(entry, storm).values()) == {"placed"}, of(entry, storm)

    # -- the lockout: the executor's requests that were on their way when the venue first
    # answered 429 went into it (it could not know); after that answer nothing of the login
    # went out until the venue's lockout, restarted by the last of them, was over
    violations = await rig.violations()
    by_login = violations["byLogin"]
    ws = [r for r in await rig.requests(rig.user_ids[locked]) if r["transport"] == "ws"]
    into = [r for r in ws if r["status"] == 429]
    assert 1 <= len(into) <= ACCOUNTS_PER_LOGIN, into
    last_429 = max(_epoch(r["time"]) for r in into)
    after = [r for r in ws if _epoch(r["time"]) > last_429]
    assert after, "nothing sent after the lockout"
    assert all(_epoch(r["time"]) >= last_429 + VENUE_LOCKOUT_S for r in after), after
    assert {r["status"] for r in after} == {200}, after
    locked_violations = int(by_login.get(str(rig.user_ids[locked]), 0)) - int(violations_before)
    assert locked_violations == len(into), violations["recent"]
    assert "placed" not in set(locked_then.values()), locked_then
    # the requests the lockout stopped (sent into it, or held back by the socket that saw the
    # 429) went back and were placed once it was over
    assert set(of(entry, locked).values()) == {"placed"}, of(entry, locked)

    # -- the venue: exactly one entry per placed account, nothing for the others
    entries = await rig.entries_at_venue()
    placed = {a["account_id"] for a in entry["accounts"] if a["outcome"] == "placed"}
    assert entries == {a: 1 if a in placed else 0 for a in rig.seeded.account_ids}, entries
    assert set(by_login) <= {str(rig.user_ids[locked])}, by_login  # nobody else violated
    print(
        f"measured: storm of {STORM_TICKETS} p-tickets honoured ({len(of(entry, storm))} "
        f"accounts placed once); lockout staged with {test_requests} requests of another "
        f"client; the executor sent {len(into)} request(s) into it (in flight together) and "
        f"none until it was over; "
        f"{len(placed)} of {len(rig.seeded.account_ids)} accounts placed once; the free login "
        "placed while the locked one waited"
    )
