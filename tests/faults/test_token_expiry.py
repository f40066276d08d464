"""Tokens expire mid-fan-out and one login's renewal fails: no order goes out with an expired
token, auth raises ``ReauthRequired`` for that login, and the other logins trade on.

Three logins x six accounts, the whole system as processes. The venue's tokens live
``LIFETIME_S``; auth renews a token when less than ``RENEW_BEFORE_S`` is left. The venue answers
every renewal of one login ("failing") with 503, so its token runs out. The executor paces every
login at one request per ``PACE_S``, so a fan-out of six accounts lasts several seconds, and the
entry signal is sent so that the failing login's token reaches its end while that login's
fan-out is under way (the test checks that this was staged: some of its accounts placed, some
not). A second signal after the expiry must trade every other login again and nothing on the
failing one.

What the venue saw is the proof: every request of the failing login before its token's expiry,
not one request refused as unauthorized (401) anywhere, every account of the other logins with
exactly one order per signal, no violation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tests.faults.rig_tokens import PRICE, FaultRig, fault_system, until

from phalanx_common import subjects
from phalanx_common.events import ReauthRequired, TokenRenewed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

LOGINS = 3
ACCOUNTS_PER_LOGIN = 5
LIFETIME_S = 16.0
RENEW_BEFORE_S = 8.0
PACE_S = 0.8
MARGIN_S = 1.0  # the executor sends nothing on a token this close to its expiry
ORDER_ENDPOINTS = ("order/placeoso", "order/placeorder", "order/liquidateposition")


@pytest_asyncio.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultRig]:
    monkeypatch.setenv("PHALANX_BENCH_KEEP_LOGS", "1")  # the logs stay in tmp_path
    env = {
        "PHALANX_SIM_TOKEN_LIFETIME_S": str(LIFETIME_S),
        "PHALANX_RENEW_BEFORE_S": str(RENEW_BEFORE_S),
        "PHALANX_RENEW_CHECK_S": "0.5",
        "PHALANX_LOGIN_WINDOWS": f"[[1, {PACE_S}]]",
        "PHALANX_TOKEN_EXPIRY_MARGIN_S": str(MARGIN_S),
    }
    async with fault_system(
        tmp_path, logins=LOGINS, accounts_per_login=ACCOUNTS_PER_LOGIN, extra_env=env
    ) as running:
        yield running


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _body(action: str, n: int) -> dict[str, Any]:
    body: dict[str, Any] = {"ticker": "MNQ1!", "action": action, "extras": {"n": n}}
    if action != "exit":
        body |= {
            "quantity": 1,
            "takeProfit": {"limitPrice": PRICE + 40},
            "stopLoss": {"stopPrice": PRICE - 20},
        }
    return body


async def test_an_expired_token_sends_nothing_raises_reauth_and_leaves_other_logins_trading(
    rig: FaultRig,
) -> None:
    failing, *others = rig.seeded.logins
    await rig.fault(
        userId=rig.user_ids[failing],
        errorStatus=503,
        errorCount=10_000,
        endpoints=["auth/renewaccesstoken"],
    )
    await rig.ready()
    # deadlines long enough for a paced fan-out; the failing login's unsent intents expire
    await rig.strategy(max_entry_age_s=8, max_exit_age_s=6, rate_limit_per_min=10_000)
    expiry = _epoch(str((await rig.login(failing))["token_expiration_time"]))
    loop = asyncio.get_running_loop()
    wall_to_loop = loop.time() - dt.datetime.now(dt.UTC).timestamp()
    # the failing login's fan-out (a contract lookup, then five orders, one per PACE_S)
    # straddles its cut-off
    send_at = expiry - MARGIN_S - 3.5 * PACE_S
    assert loop.time() < send_at + wall_to_loop, "set-up took longer than the token lives"
    await asyncio.sleep(send_at + wall_to_loop - loop.time())
    entry_id = await rig.signal(_body("buy", 1))
    other_accounts = [a for login in others for a in rig.accounts_of[login]]

    async def others_entered() -> bool:
        accounts = (await rig.entry(entry_id)).get("accounts", [])
        done = {a["account_id"] for a in accounts if a["outcome"] == "placed"}
        return done >= set(other_accounts)

    async def reauth_required() -> bool:
        return bool((await rig.login(failing))["status"] == "reauth_required")

    await until(others_entered, 30, "the other logins' accounts entered")
    await until(reauth_required, 30, f"auth marks {failing} reauth_required")
    exit_id = await rig.signal(_body("exit", 2))
    first = await rig.outcome(entry_id)
    second = await rig.outcome(exit_id)

    # -- what the venue saw
    outcome = {a["account_id"]: a["outcome"] for a in first["accounts"]}
    exits = {a["account_id"]: a["outcome"] for a in second["accounts"]}
    failing_accounts = rig.accounts_of[failing]
    placed_failing = [a for a in failing_accounts if outcome[a] == "placed"]
    failing_requests = await rig.requests(rig.user_ids[failing])
    late = [
        r
        for r in failing_requests
        if r["endpoint"] in ORDER_ENDPOINTS and _epoch(r["time"]) >= expiry
    ]
    assert late == [], late  # no order request on an expired token
    refused = [r for r in await rig.requests() if r["status"] == 401]
    assert refused == [], refused[:5]  # nothing at all sent on an expired token
    # staged as intended: the token ran out in the middle of this login's fan-out
    assert 0 < len(placed_failing) < ACCOUNTS_PER_LOGIN, (outcome, rig.system.log_dir)
    assert {outcome[a] for a in failing_accounts} == {"placed", "expired"}, outcome
    orders_failing = {a: len(await rig.orders(a)) for a in failing_accounts}
    # each placed entry with its two bracket legs; nothing on the accounts not placed; the
    # exit after the expiry sends nothing for this login (its position stays for a person)
    assert orders_failing == {a: 3 if a in placed_failing else 0 for a in failing_accounts}
    assert {exits[a] for a in failing_accounts} <= {"expired", "skipped"}, exits

    # -- the other logins: every account exactly its entry (with legs) and its exit
    assert {outcome[a] for a in other_accounts} == {"placed"}, outcome
    assert {exits[a] for a in other_accounts} == {"placed"}, exits
    entries = await rig.entries_at_venue()
    assert {entries[a] for a in other_accounts} == {2}, entries
    positions = await rig.venue_positions()
    assert {positions[a] for a in other_accounts} == {0}, positions
    assert (await rig.violations())["count"] == 0

    # -- auth: ReauthRequired for the failing login only; the others renewed
    events = await rig.stream_events(subjects.AUTH.name)
    reauth = [e.login_id for e in events if isinstance(e, ReauthRequired)]
    # TokenRenewed: once when the login was connected, then once per renewal
    renewed = Counter(e.login_id for e in events if isinstance(e, TokenRenewed))
    assert reauth == [failing], reauth
    assert renewed[failing] == 1, renewed
    assert all(renewed[login] >= 2 for login in others), renewed
    for login in others:
        assert (await rig.login(login))["status"] == "active"
    print(
        f"measured: token of 1 of {LOGINS} logins expired mid-fan-out after failed renewals: "
        f"{len(placed_failing)} of its {ACCOUNTS_PER_LOGIN} accounts placed before the cut-off, "
        f"{ACCOUNTS_PER_LOGIN - len(placed_failing)} expired unsent, 0 requests after expiry, "
        f"0 answered 401; ReauthRequired for it only; the other {len(other_accounts)} accounts "
        f"entered and exited once each (renewals: {[renewed[x] - 1 for x in others]}), 0 violations"
    )
