"""A p-ticket storm on one login and a 429 lockout on another, during one fan-out.

Three logins x three accounts, the whole system as processes; the venue allows 12 requests per
login in any 4 s, the executor budgets one per 0.4 s (so waiters go one by one, by priority).
Login "storm" gets a penalty storm (its next requests are answered with p-tickets of 1 s).
Login "locked" is driven into a lockout by another client of the same login (the test's own
session spends the budget, ignores the penalty and is locked out: 4 s, restarted by every
request during it) just before the signal, so the executor walks into a lockout it cannot know
of.

Must hold: the storm is honoured (every ticket used and counted as a block of the login, every
account of "storm" placed once); the requests of "locked" already on their way when the venue
first answers 429 go into the lockout (the executor cannot know of it sooner), then nothing of
that login goes out until the venue's lockout is over, and its accounts are placed after it
(the stopped requests were handed back, ADR-0111); the third login trades at once, never
waiting for the other two; no violation at the venue other than the test's own and those
requests. Exits first: one account of "locked" is traded by a second strategy, which entered
before the lockout and sends its exit after the first strategy's entries; when the lockout ends
the exit reaches the venue before those entries.

At the permit level (real Redis): services/executor/tests/test_permits.py (exits first while
the budget is short, and when a block ends) and test_permit_fairness.py (a locked-out login's
waiters never delay another login's).
"""

from __future__ import annotations

import datetime as dt
import time
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
        "PHALANX_SIM_LIMIT_PER_MINUTE": "12",
        "PHALANX_SIM_LIMIT_MINUTE_S": "4",
        "PHALANX_SIM_PENALTY_STRIKES": "1",
        "PHALANX_SIM_LOCKOUT_S": str(VENUE_LOCKOUT_S),
        # one request per 0.4 s: when a block ends, its waiters go one by one, by priority
        "PHALANX_LOGIN_WINDOWS": "[[1, 0.4]]",
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


class _Strategy:
    """Another strategy of the seeded system, subscribed to some accounts."""

    def __init__(self, rig: FaultRig, strategy_id: str, url: str, accounts: list[int]) -> None:
        self.rig = rig
        self.strategy_id = strategy_id
        self.url = url
        self.accounts = accounts

    @classmethod
    async def create(cls, rig: FaultRig, accounts: list[int]) -> _Strategy:
        ingest = rig.endpoints.ingest
        resp = await rig.http.post(
            f"{ingest}/admin/strategies", json={"name": "exits"}, headers=rig.admin
        )
        resp.raise_for_status()
        strategy_id, url = str(resp.json()["strategy_id"]), str(resp.json()["webhook_url"])
        for path, body in (
            ("/subscriptions:bulk", {"account_ids": accounts}),
            ("", {"max_entry_age_s": 60, "max_exit_age_s": 60}),
        ):
            send = rig.http.post if path else rig.http.patch
            resp = await send(
                f"{ingest}/admin/strategies/{strategy_id}{path}", json=body, headers=rig.admin
            )
            resp.raise_for_status()
        return cls(rig, strategy_id, url, accounts)

    async def send(self, body: dict[str, Any]) -> str:
        resp = await self.rig.http.post(self.url, json=body)
        assert resp.status_code == 200, resp.text
        assert not resp.json().get("duplicate"), resp.text
        return str(resp.json()["id"])

    async def outcomes(self, signal_id: str, timeout_s: float = 60) -> list[str]:
        """Every account's final outcome of one of this strategy's signals."""
        found: list[str] = []

        async def final() -> bool:
            entry = await self.rig.entry(signal_id)
            found[:] = [a["outcome"] for a in entry.get("accounts", [])]
            return (
                entry.get("status") == "done"
                and len(found) == len(self.accounts)
                and all(o not in ("pending", "unknown") for o in found)
            )

        await until(final, timeout_s, f"outcomes of {signal_id}")
        return found

    async def ready(self) -> None:
        """Until the planner knows this strategy's subscriptions."""

        async def planned() -> bool:
            body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
            return await self.outcomes(await self.send(body)) == ["skipped"] * len(self.accounts)

        await until(planned, 30, "the planner knows the second strategy")

    async def trade(self, body: dict[str, Any]) -> list[str]:
        return await self.outcomes(await self.send(body))


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


async def _exit_went_first(rig: FaultRig, held: int, entering: list[int]) -> None:
    """Exits first: when the lockout ended, the exit (sent after the entries) went first."""
    held_orders = [o for o in await rig.orders(held) if o.get("parentId") is None]
    exit_order = max(int(o["id"]) for o in held_orders)
    entry_orders = [
        int(o["id"]) for a in entering for o in await rig.orders(a) if o.get("parentId") is None
    ]
    assert len(held_orders) == 2, held_orders  # its entry before the lockout, its exit
    assert exit_order < min(entry_orders), (exit_order, entry_orders)


async def test_a_storm_and_a_lockout_are_honoured_and_leave_the_other_login_alone(
    rig: FaultRig,
) -> None:
    storm, locked, free = rig.seeded.logins
    held, *entering = rig.accounts_of[locked]
    await rig.ready()
    await rig.strategy(max_entry_age_s=60, rate_limit_per_min=10_000)
    # a second strategy trades only ``held``, which the first one leaves alone: it enters now,
    # and its exit will wait for the lockout together with the first strategy's entries
    exits = await _Strategy.create(rig, [held])
    resp = await rig.http.put(
        f"{rig.endpoints.ingest}/admin/strategies/{rig.seeded.strategy_id}/subscriptions/{held}",
        json={"enabled": False},
        headers=rig.admin,
    )
    resp.raise_for_status()
    await exits.ready()
    assert await exits.trade({"ticker": "MNQ1!", "action": "buy", "quantity": 1}) == ["placed"]

    await rig.fault(userId=rig.user_ids[storm], penaltyCount=STORM_TICKETS, penaltyTimeS=1.0)
    test_requests = await _lock_out(rig, locked)
    violations_before = (await rig.violations())["byLogin"].get(str(rig.user_ids[locked]), 0)
    signal_id = await rig.signal(_body(1))
    exit_id = await exits.send({"ticker": "MNQ1!", "action": "exit"})  # after the entries

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
    assert of(entry, locked) == {held: "skipped", **dict.fromkeys(entering, "placed")}
    assert await exits.outcomes(exit_id) == ["placed"]

    await _exit_went_first(rig, held, entering)

    # -- the venue: exactly one entry per placed account, nothing for the others
    entries = await rig.entries_at_venue()
    placed = {a["account_id"] for a in entry["accounts"] if a["outcome"] == "placed"}
    assert placed == set(rig.seeded.account_ids) - {held}
    assert entries == {a: 2 if a == held else 1 for a in rig.seeded.account_ids}, entries
    assert set(by_login) <= {str(rig.user_ids[locked])}, by_login  # nobody else violated
    print(
        f"measured: storm of {STORM_TICKETS} p-tickets honoured ({len(of(entry, storm))} "
        f"accounts placed once); lockout staged with {test_requests} requests of another "
        f"client; the executor sent {len(into)} request(s) into it (in flight together) and "
        f"none until it was over; "
        f"{len(placed)} entries placed once (the 9th account held by the other strategy); its "
        "exit, sent after the entries, went first when the lockout ended; the free login "
        "placed while the locked one waited"
    )
