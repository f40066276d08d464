"""Whole-path fuzzing of the webhook: hypothesis sends TradersPost-like bodies with fuzzed values
(huge, tiny, negative, string and float quantities and prices, unknown tickers, odd order types,
nested junk, missing fields) and raw bytes through ingest, the planner, the worker and the venue.

For every body: never a 5xx; a 4xx carries a messageCode; every 2xx ends, within a bounded time,
in a recorded outcome for every subscribed account (placed, rejected, skipped or expired, each
with its reason) or in a planner rejection with its reason. Afterwards a valid exit and a valid
entry still trade: nothing a fuzzed signal did may stop the signals after it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from phalanx_bench.seed import seed
from phalanx_bench.threaded import ThreadedSystem
from phalanx_common.contracts import ContractBook

# The system runs in another thread of this process and uses the global ``random`` (reconnect
# jitter) while hypothesis draws, which hypothesis would take for a strategy using ``random``.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

PRICE = 21000
OUTCOME_TIMEOUT_S = 30.0
MULTIPLIERS = (1, 2)
# Budgets are not what is tested here (a few hundred requests a minute on one login).
UNTHROTTLED: dict[str, Any] = {
    "executor_settings": {"login_windows": ((1_000_000, 61.0),)},
    "sim_settings": {"sim_rate_limits": False},
}
TERMINAL = ("placed", "rejected", "skipped", "expired")


# -- fuzzed bodies -------------------------------------------------------------------------------

_ODD_NUMBERS = st.sampled_from(
    ["2", "1.5", "-1", "0", "1e999", "NaN", "Infinity", "-Infinity", "1e-30", " 3 ", "", "0x10",
     "1,5", "\u0661", "2e2", "99999999999999999999"]
)  # fmt: skip
_NUMBERS = st.one_of(
    st.integers(min_value=-3, max_value=5),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-12, max_value=1e-3),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    _ODD_NUMBERS,
    st.booleans(),
    st.none(),
)


def _short_or_parked(value: Any) -> Any:
    """Map an acceptable delay above 1 s to 3,600 s; leave every other value as fuzzed."""
    try:
        seconds = Decimal(str(value))
    except (ArithmeticError, ValueError):
        return value
    if isinstance(value, bool) or not seconds.is_finite():
        return value
    return 3600 if 1 < seconds <= 3600 else value


_PRICES = st.one_of(
    _NUMBERS,
    st.integers(min_value=PRICE - 100, max_value=PRICE + 100),
    st.sampled_from([PRICE, PRICE - 0.25, PRICE + 0.1, PRICE + 0.13, 0.25, 1e8, 1e-9]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=12))
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _words(*words: str) -> st.SearchStrategy[Any]:
    """Mostly one of ``words``, sometimes junk."""
    known = st.sampled_from(words)
    return st.one_of(known, known, known, _JUNK)


def _tickers() -> st.SearchStrategy[Any]:
    today = dt.datetime.now(dt.UTC).date()
    front, _ = ContractBook.load().resolve("MNQ1!", today)
    return _words(
        "MNQ1!", "mnq1!", " MNQ1! ", "CME_MINI:MNQ1!", front, front.lower(), "MNQ2!", "MNQ3!",
        "ES1!", "FOO1!", "", "{{ticker}}", "MNQZ2020", "MNQZ99", "MNQQ6", "AAPL", "MNQ1!" * 10,
    )  # fmt: skip


_ORDER_TYPES = _words(
    "market", "limit", "stop", "stop_limit", "trailing_stop", "MARKET", "Limit", "iceberg", ""
)  # fmt: skip
_BRACKET = st.one_of(
    _JUNK,
    st.fixed_dictionaries(
        {},
        optional={
            "type": _words("stop", "stop_limit", "trailing_stop", "limit", "STOP"),
            "limitPrice": _PRICES,
            "stopPrice": _PRICES,
            "percent": _NUMBERS,
            "amount": _NUMBERS,
            "trailAmount": _NUMBERS,
            "trailPercent": _NUMBERS,
        },
    ),
)
_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "sentiment": _words("bullish", "bearish", "flat", "long", "short", "FLAT", "sideways"),
    "quantity": _NUMBERS,
    "quantityType": _words("fixed_quantity", "percent_of_position", "dollar_amount", "lots"),
    "orderType": _ORDER_TYPES,
    "limitPrice": _PRICES,
    "stopPrice": _PRICES,
    "price": _PRICES,
    "signalPrice": _PRICES,
    "trailAmount": _NUMBERS,
    "trailPercent": _NUMBERS,
    "takeProfit": _BRACKET,
    "stopLoss": _BRACKET,
    "timeInForce": _words("day", "gtc", "ioc", "fok", "opg", "cls", "gtd"),
    "cancel": _words("true", "false", "yes"),
    "cancelOrderType": _ORDER_TYPES,
    # A delay that is accepted either ends within the test (<= 1 s) or is parked past its end
    # (3,600 s, the longest allowed): a parked fuzz signal must not fire into the final check.
    "delay": st.one_of(_NUMBERS, st.sampled_from([0, 0.5, 1])).map(_short_or_parked),
    "expiresAt": _words("2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "tomorrow", "0"),
    "time": _words("2020-01-01T00:00:00Z", "{{timenow}}"),
    "interval": _JUNK,
    "id": st.one_of(_JUNK, st.sampled_from(["fuzz-1", "fuzz-2", "x" * 200])),
    "extras": _JUNK,
    "test": _words("true"),
    "ignoreTradingWindows": _JUNK,
}
_TRADERSPOST = st.one_of(
    st.fixed_dictionaries(
        {"ticker": _tickers(), "action": _words("buy", "sell", "exit", "cancel", "add", "BUY")},
        optional=_FIELDS,
    ),
    st.fixed_dictionaries(
        {}, optional={"ticker": _tickers(), "action": _words("buy", "exit"), **_FIELDS}
    ),
)
_TEMPLATES = [
    {"ticker": "MNQ1!", "action": "buy", "quantity": 1},
    {"ticker": "MNQ1!", "action": "sell", "quantity": 2, "price": PRICE},
    {"ticker": "MNQ1!", "action": "buy", "orderType": "limit", "limitPrice": PRICE - 5},
    {"ticker": "MNQ1!", "action": "sell", "orderType": "stop", "stopPrice": PRICE - 5},
    {
        "ticker": "MNQ1!",
        "action": "buy",
        "orderType": "stop_limit",
        "stopPrice": PRICE + 5,
        "limitPrice": PRICE + 6,
    },
    {"ticker": "MNQ1!", "action": "sell", "orderType": "trailing_stop", "trailAmount": 5},
    {
        "ticker": "MNQ1!",
        "action": "buy",
        "price": PRICE,
        "takeProfit": {"amount": 20},
        "stopLoss": {"type": "trailing_stop", "trailPercent": 0.1},
    },
    {"ticker": "MNQ1!", "action": "exit"},
    {"ticker": "MNQ1!", "action": "exit", "quantity": 50, "quantityType": "percent_of_position"},
    {"ticker": "MNQ1!", "action": "buy", "sentiment": "flat"},
    {"ticker": "MNQ1!", "action": "cancel", "cancelOrderType": "limit"},
    {"ticker": "MNQ1!", "action": "add", "quantity": 1},
]
_TICKS = st.integers(min_value=-40, max_value=40).map(lambda n: PRICE + n / 4)
_PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "sentiment": st.sampled_from(["bullish", "bearish", "flat", "long", "short"]),
    "quantity": st.one_of(st.integers(min_value=1, max_value=5), st.just("2")),
    "quantityType": st.sampled_from(["fixed_quantity", "percent_of_position"]),
    "orderType": st.sampled_from(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
    "limitPrice": _TICKS,
    "stopPrice": _TICKS,
    "price": _TICKS,
    "signalPrice": _TICKS,
    "trailAmount": st.sampled_from([1, 2.5, 10]),
    "trailPercent": st.sampled_from([0.01, 0.1]),
    "takeProfit": st.sampled_from([{"amount": 10}, {"percent": 0.2}, {"limitPrice": PRICE + 30}]),
    "stopLoss": st.sampled_from(
        [{"amount": 10}, {"type": "trailing_stop", "trailAmount": 4}, {"stopPrice": PRICE - 30}]
    ),
    "timeInForce": st.sampled_from(["day", "gtc", "ioc", "fok"]),
    "cancel": st.booleans(),
    "cancelOrderType": st.sampled_from(["market", "limit", "stop", "stop_limit"]),
    "delay": st.sampled_from([0, 0.5]),
    "expiresAt": st.just("2999-01-01T00:00:00Z"),
    "time": st.just("2020-01-01T00:00:00Z"),
    "interval": st.sampled_from(["1", "5m", 15]),
    "id": st.sampled_from(["fuzz-1", "fuzz-2", "fuzz-3"]),
    "extras": st.dictionaries(st.text(max_size=5), _SCALARS, max_size=2),
    "test": st.booleans(),
    "ignoreTradingWindows": st.booleans(),
}


def _changes(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """New values for ``names``: mostly plausible ones, sometimes fuzz."""
    return st.fixed_dictionaries(
        {n: st.one_of(_PLAUSIBLE[n], _PLAUSIBLE[n], _PLAUSIBLE[n], _FIELDS[n]) for n in names}
    )


# A valid signal with up to three fields changed: most reach the planner and the worker.
_NEAR_VALID = st.builds(
    lambda template, changes: {**template, **changes},
    st.sampled_from(_TEMPLATES),
    st.lists(st.sampled_from(sorted(_FIELDS)), max_size=3, unique=True).flatmap(_changes),
)
_KINDS: list[st.SearchStrategy[bytes]] = [
    *[_NEAR_VALID.map(lambda body: json.dumps(body).encode())] * 7,
    _TRADERSPOST.map(lambda body: json.dumps(body).encode()),
    _JUNK.map(lambda junk: json.dumps(junk).encode()),
    st.binary(max_size=200),
]
# Seven in ten near-valid signals (weighted by hand: one_of would weigh the kinds alike).
BODIES = st.integers(min_value=0, max_value=len(_KINDS) - 1).flatmap(lambda n: _KINDS[n])


# -- the system ----------------------------------------------------------------------------------


@dataclass
class Rig:
    threaded: ThreadedSystem
    http: httpx.Client
    webhook_url: str
    accounts: dict[int, int]  # account id -> multiplier
    symbol: str

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.threaded.system.endpoints.admin_token}"}

    def outcome(self, signal_id: str) -> dict[str, Any]:
        """The signal log entry once it has ended: every account has a terminal outcome, or
        the planner refused the signal. Fails after ``OUTCOME_TIMEOUT_S``."""
        url = f"{self.threaded.system.endpoints.ingest}/admin/signals/{signal_id}"
        deadline = time.monotonic() + OUTCOME_TIMEOUT_S
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            resp = self.http.get(url, headers=self.admin())
            if resp.status_code == 200:
                entry = resp.json()
                if entry["status"] == "rejected":
                    return entry
                if entry["status"] == "delayed" and entry["due_ns"] > time.time_ns() + 5e9:
                    return entry  # parked past the test: recorded, planned when due

                ended = [a for a in entry["accounts"] if a["outcome"] in TERMINAL]
                if entry["status"] == "done" and len(ended) == len(self.accounts):
                    return entry
            time.sleep(0.02)
        raise AssertionError(f"signal {signal_id} did not end in {OUTCOME_TIMEOUT_S} s: {entry}")

    def positions(self) -> dict[int, int]:
        """Each account's position in the front contract, at the venue."""

        async def read() -> dict[int, int]:
            venue = self.threaded.system.sim.venue
            info = venue.contracts.resolve(self.symbol)
            assert info is not None
            found = {}
            for account_id in self.accounts:
                position = venue.state.books[account_id].positions.get(info.contract.id)
                found[account_id] = position.netPos if position else 0
            return found

        return self.threaded.run(read())

    def send(self, body: bytes) -> httpx.Response:
        return self.http.post(
            self.webhook_url, content=body, headers={"Content-Type": "application/json"}
        )


@pytest.fixture
def rig(nats_url: str, redis_url: str) -> Iterator[Rig]:
    threaded = ThreadedSystem(nats_url, redis_url, **UNTHROTTLED)
    http = httpx.Client(timeout=30)
    try:
        yield _prepare(threaded, http)
    finally:
        http.close()
        threaded.close()


def _prepare(threaded: ThreadedSystem, http: httpx.Client) -> Rig:
    system = threaded.system
    seeded = threaded.run(seed(system.endpoints, logins=1, accounts_per_login=2, prefix="fuzz"))
    symbol, _ = ContractBook.load().resolve("MNQ1!", dt.datetime.now(dt.UTC).date())
    ingest, strategy = system.endpoints.ingest, seeded.strategy_id
    admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
    http.patch(
        f"{ingest}/admin/strategies/{strategy}",
        json={"rate_limit_per_min": 1_000_000, "repeat_window_s": 0.5},
        headers=admin,
    ).raise_for_status()
    accounts = dict(zip(seeded.account_ids, MULTIPLIERS, strict=True))
    for account_id, multiplier in accounts.items():
        http.put(
            f"{ingest}/admin/strategies/{strategy}/subscriptions/{account_id}",
            json={"multiplier": multiplier, "allow_add": multiplier > 1},
            headers=admin,
        ).raise_for_status()
    threaded.run(_connected(threaded, symbol))
    rig = Rig(threaded, http, seeded.webhook_url, accounts, symbol)
    deadline = time.monotonic() + 30
    while True:  # the subscriptions reached the planner: a test signal skips both accounts
        probe = rig.send(json.dumps({"ticker": "MNQ1!", "action": "buy", "test": True}).encode())
        entry = rig.outcome(probe.json()["id"])
        if [a["outcome"] for a in entry["accounts"]] == ["skipped"] * len(accounts):
            return rig
        assert time.monotonic() < deadline, "subscriptions never reached the planner"
        time.sleep(0.6)  # past the repeat window, so the probe is a new signal


async def _connected(threaded: ThreadedSystem, symbol: str) -> None:
    system = threaded.system
    pool = system.executor.pool
    assert pool is not None
    deadline = time.monotonic() + 30
    while len(pool) < 1:
        assert time.monotonic() < deadline, "the executor did not connect the login"
        await _sleep(0.05)
    system.sim.set_price(symbol, float(PRICE))


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _check_ended(entry: dict[str, Any], accounts: dict[int, int]) -> None:
    if entry["status"] == "rejected":
        assert entry["planner_rejected"], entry
        return
    if entry["status"] == "delayed":  # parked until due (ADR-0040): recorded, not yet planned
        assert entry["due_ns"] > entry["received_ns"], entry
        return
    assert {a["account_id"] for a in entry["accounts"]} == set(accounts), entry
    for account in entry["accounts"]:
        assert account["outcome"] in TERMINAL, entry
        if account["outcome"] == "placed":
            assert account["order_id"], entry
        else:
            assert account["reason"], entry


def test_fuzzed_webhooks_never_fail_the_server_and_every_accepted_one_ends(rig: Rig) -> None:
    seen = {"accepted": 0, "refused": 0}
    ended: set[str] = set()

    @settings(
        max_examples=3000,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # No shrinking: the system keeps what every earlier body did, so a replayed smaller
        # body is another experiment; the first body whose signal does not end is the culprit.
        phases=(Phase.explicit, Phase.generate),
    )
    @given(body=BODIES)
    def one(body: bytes) -> None:
        resp = rig.send(body)
        assert resp.status_code < 500, (body, resp.status_code, resp.text)
        if resp.status_code >= 300:
            seen["refused"] += 1
            assert resp.json()["messageCode"], resp.text
            return
        seen["accepted"] += 1
        answer = resp.json()
        if answer.get("duplicate"):
            # an id (explicit, or a repeat inside the window) accepted before: it ended then,
            # and the signal log may have evicted it since (it keeps the latest 200)
            assert answer["id"] in ended, answer
            return
        try:
            _check_ended(rig.outcome(answer["id"]), rig.accounts)
        except AssertionError as exc:
            raise AssertionError(f"after the body {body!r}: {exc}") from None
        ended.add(answer["id"])

    one()
    assert seen["accepted"] > 10, seen  # the fuzz reached the executor, not only the door
    assert seen["refused"] > 10, seen

    # what the fuzz left behind never stops a valid signal: exit, then enter
    for body, want in (
        ({"ticker": "MNQ1!", "action": "exit"}, dict.fromkeys(rig.accounts, 0)),
        ({"ticker": "MNQ1!", "action": "buy", "quantity": 1}, rig.accounts),
    ):
        resp = rig.send(json.dumps({**body, "extras": {"after": "fuzz"}}).encode())
        assert resp.status_code == 200, resp.text
        entry = rig.outcome(resp.json()["id"])
        _check_ended(entry, rig.accounts)
        assert rig.positions() == want, (body, entry)
