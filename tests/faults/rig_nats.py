"""The rig of the NATS fault tests: the whole system as processes over a NATS the test owns, a
burst of webhooks with a fault in its middle, and the checks that follow every accepted signal
to the venue.

The burst is ``Shape.signals`` webhooks of one strategy, each a ``buy`` of 1 with a body of its own
(no ``id``: TradingView's usual alert). Every subscription allows adding, so every signal trades
exactly one market order on every account whatever order the signals reach the executor in:
an account's expected orders are exactly the accepted signals, one each. The strategy's repeat
window is an hour, so a webhook that got no 2xx and is sent again (as TradingView's users and
TradersPost advise) is the same signal, never a second one.

Budgets are raised so that neither the venue's nor the executor's limits pace the run (the
venue still counts violations, and the checks demand none): the fault, not the limiter, is
under test. Entries do not expire for an hour (an outage must not turn into refusals).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
from nats.js.errors import KeyNotFoundError

from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_bench.system import System
from phalanx_common import subjects
from phalanx_common.bus import MSG_ID, Bus
from phalanx_common.codec import decode_event
from phalanx_common.events import SignalReceived

SENDERS = 8  # webhooks in flight at once
PRICE = 21000
SERVICES = frozenset({"auth", "ingest", "ledger", "executor-0"})  # NATS connection names
TERMINAL = frozenset({"accepted", "rejected", "expired"})


@dataclass(frozen=True)
class Shape:
    """The size of a run: logins x accounts each, webhooks, and when the fault starts."""

    logins: int
    accounts_per_login: int
    signals: int
    fault_at: int  # the fault starts once this many webhooks have been answered

    @property
    def accounts(self) -> int:
        return self.logins * self.accounts_per_login


def system_env(outbox_dir: Path) -> dict[str, str]:
    """Settings of every service in these tests (on top of :class:`System`'s)."""
    return {
        "PHALANX_INGEST_OUTBOX_DIR": str(outbox_dir),  # as in make run: 202 while NATS is away
        "PHALANX_SIM_LIMIT_PER_MINUTE": "100000",
        "PHALANX_SIM_LIMIT_PER_HOUR": "1000000",
        "PHALANX_LOGIN_WINDOWS": "[[90000, 61], [900000, 3601]]",
        "PHALANX_WEBHOOK_RATE_PER_MIN": "100000",
        "PHALANX_WEBHOOK_BURST": "1000",
        "PHALANX_LOG_LEVEL": "INFO",
    }


def monitor_names(monitor_urls: list[str]) -> set[str]:
    """Names of the client connections the running NATS servers report (``/connz``)."""
    names: set[str] = set()
    for url in monitor_urls:
        try:
            with urllib.request.urlopen(f"{url}/connz?limit=1024", timeout=2) as resp:  # noqa: S310
                connz = json.loads(resp.read())
        except OSError:
            continue  # a server that is down has no connections
        names.update(str(c.get("name", "")) for c in connz.get("connections") or [])
    return names


@dataclass
class Answer:
    """One webhook's final answer (after resends) and what happened on the way."""

    number: int
    status: int
    signal_id: str
    queued: bool
    attempts: list[str] = field(default_factory=list)  # status or error of every attempt
    during_fault: list[int] = field(default_factory=list)  # statuses answered inside the fault


@dataclass
class Burst:
    """The outcome of :meth:`Rig.burst`."""

    answers: list[Answer]
    fault_s: float  # how long the fault coroutine ran
    duration_s: float  # from the first webhook to the last answer and the fault's end

    @property
    def accepted_ids(self) -> set[str]:
        return {a.signal_id for a in self.answers if 200 <= a.status < 300}

    def first_attempts(self) -> Counter[str]:
        return Counter(a.attempts[0] for a in self.answers)


class Rig:
    """The running system, seeded, and the test's HTTP client."""

    def __init__(
        self, system: System, http: httpx.AsyncClient, seeded: SeededStrategy, shape: Shape
    ) -> None:
        self.system = system
        self.shape = shape
        self.http = http
        self.seeded = seeded
        self.admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
        self.in_fault = False
        # set by the fault once it is in place: the senders pause at ``fault_at`` until then,
        # so a fault that takes a while to stage (a server stopping) still has webhooks
        # answered during it however fast the rest of the burst would go
        self.fault_staged = asyncio.Event()
        self.answered_count = 0  # webhooks of the burst answered 2xx so far

    @classmethod
    async def prepare(cls, system: System, http: httpx.AsyncClient, shape: Shape) -> Rig:
        """Seed logins, accounts and the strategy; wait until a signal reaches every account."""
        endpoints = system.endpoints
        seeded = await seed(
            endpoints, logins=shape.logins, accounts_per_login=shape.accounts_per_login
        )
        rig = cls(system, http, seeded, shape)
        # Every subscription adds to a position: each buy is one order on each account.
        resp = await http.post(
            f"{endpoints.ingest}/admin/strategies/{seeded.strategy_id}/subscriptions:bulk",
            json={"account_ids": seeded.account_ids, "allow_add": True},
            headers=rig.admin,
        )
        resp.raise_for_status()
        resp = await http.patch(
            f"{endpoints.ingest}/admin/strategies/{seeded.strategy_id}",
            json={"repeat_window_s": 3600, "max_entry_age_s": 3600, "max_exit_age_s": 3600},
            headers=rig.admin,
        )
        resp.raise_for_status()
        resp = await http.post(
            endpoints.sim + "/admin/prices", json={"symbol": front_month(), "price": PRICE}
        )
        resp.raise_for_status()

        async def logins_connected() -> bool:
            try:  # the executor may still be starting (System waits for the others only)
                health = await http.get(system.executor_url(0) + "/healthz")
            except httpx.TransportError:
                return False
            return int(health.json()["logins_connected"]) == shape.logins

        await until(logins_connected, 60, f"{shape.logins} logins connected")

        async def subscriptions_planned() -> bool:
            body = {"ticker": "MNQ1!", "action": "buy", "test": True, "extras": {"t": time.time()}}
            answer = await http.post(seeded.webhook_url, json=body)
            assert answer.status_code == 200, answer.text
            entry = await rig.signal_entry(str(answer.json()["id"]))
            outcomes = [a["outcome"] for a in entry.get("accounts", [])]
            return outcomes == ["skipped"] * shape.accounts

        await until(subscriptions_planned, 60, "every subscription reached the planner")
        return rig

    async def signal_entry(self, signal_id: str, timeout_s: float = 20) -> dict[str, Any]:
        """The signal log's entry once the signal is done (``{}`` if it never is)."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            resp = await self.http.get(url, headers=self.admin)
            if resp.status_code == 200 and resp.json()["status"] == "done":
                entry: dict[str, Any] = resp.json()
                return entry
            await asyncio.sleep(0.2)
        return {}

    async def _send(self, number: int) -> Answer:
        """Post webhook ``number`` until it is answered 2xx (the same body each time)."""
        body = {"ticker": "MNQ1!", "action": "buy", "quantity": 1, "extras": {"burst": number}}
        attempts: list[str] = []
        during: list[int] = []
        deadline = time.monotonic() + 60
        while True:
            inside = self.in_fault
            try:
                resp = await self.http.post(self.seeded.webhook_url, json=body)
            except httpx.HTTPError as exc:
                attempts.append(type(exc).__name__)
            else:
                attempts.append(str(resp.status_code))
                if inside and self.in_fault:
                    during.append(resp.status_code)
                if 200 <= resp.status_code < 300:
                    answer = resp.json()
                    return Answer(
                        number,
                        resp.status_code,
                        str(answer["id"]),
                        bool(answer.get("queued", False)),
                        attempts,
                        during,
                    )
            assert time.monotonic() < deadline, f"webhook {number} never accepted: {attempts}"
            await asyncio.sleep(0.2)

    async def burst(self, fault: Callable[[Rig], Awaitable[None]]) -> Burst:
        """Send the shape's webhooks, ``SENDERS`` at a time; once ``fault_at`` are answered,
        run ``fault`` as the rest go on (it sets ``in_fault`` while NATS is impaired, and the
        answers given meanwhile are recorded as ``during_fault``)."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for number in range(self.shape.signals):
            queue.put_nowait(number)
        answers: list[Answer] = []
        reached = asyncio.Event()

        async def sender() -> None:
            while not queue.empty():
                answers.append(await self._send(queue.get_nowait()))
                self.answered_count = len(answers)
                if len(answers) >= self.shape.fault_at:
                    reached.set()
                    await self.fault_staged.wait()

        async def run_fault() -> float:
            await reached.wait()
            started = time.monotonic()
            try:
                await fault(self)
            finally:
                self.in_fault = False
                self.fault_staged.set()  # never leave the senders waiting
            return time.monotonic() - started

        started = time.monotonic()
        faulted = asyncio.ensure_future(run_fault())
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        fault_s = await faulted
        return Burst(sorted(answers, key=lambda a: a.number), fault_s, time.monotonic() - started)

    async def answered(self, count: int) -> None:
        """Wait (in a fault) until ``count`` more webhooks were answered, or all were."""
        target = min(self.answered_count + count, self.shape.signals)
        await until(lambda: _ready(self.answered_count >= target), 60, f"{count} webhooks answered")

    async def wait_for_services(self, monitor_urls: list[str], timeout_s: float = 60) -> float:
        """Wait until every service is connected to one of the running servers; the seconds
        it took."""
        started = time.monotonic()
        await until(
            lambda: _ready(monitor_names(monitor_urls) >= SERVICES),
            timeout_s,
            f"{sorted(SERVICES)} connected to NATS again",
        )
        return time.monotonic() - started

    async def ingest_health(self) -> dict[str, Any]:
        resp = await self.http.get(self.system.endpoints.ingest + "/healthz")
        health: dict[str, Any] = resp.json()
        return health


async def _ready(value: bool) -> bool:
    return value


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s: {what}"
        await asyncio.sleep(0.25)


async def stored_signals(nats_url: str) -> list[str]:
    """The signal id of every message in the SIGNALS stream, in stream order (one entry per
    stored message, so a signal stored twice appears twice)."""
    bus = await Bus.connect(nats_url, "fault-test-inspect")
    try:
        info = await bus.js.stream_info(subjects.SIGNALS.name)
        ids: list[str] = []
        for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
            msg = await bus.js.get_msg(subjects.SIGNALS.name, seq)
            event = decode_event(msg.data or b"")
            assert isinstance(event, SignalReceived)
            assert (msg.headers or {}).get(MSG_ID) == event.signal_id
            ids.append(event.signal_id)
        return ids
    finally:
        await bus.close()


async def intent_states(nats_url: str, keys: set[str]) -> dict[str, str]:
    """The state of the intent claims ``keys`` in the ``intents`` bucket ("missing" when a
    claim is not there). Each key is read itself: listing a bucket's keys can come back short."""
    bus = await Bus.connect(nats_url, "fault-test-inspect")
    try:
        kv = await bus.js.key_value(subjects.Buckets.INTENTS.name)
        states: dict[str, str] = {}
        for key in sorted(keys):
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                states[key] = "missing"
                continue
            states[key] = str(msgspec.json.decode(entry.value or b"{}")["state"])
        return states
    finally:
        await bus.close()


@dataclass
class Venue:
    """What the simulated venue received, per account."""

    signals_by_account: dict[int, Counter[str]]  # signal id (from clOrdId) -> orders
    cl_ord_ids: Counter[str]
    violations: int

    @property
    def orders(self) -> int:
        return sum(sum(c.values()) for c in self.signals_by_account.values())


async def venue(http: httpx.AsyncClient, sim: str, accounts: list[int]) -> Venue:
    """Every account's orders at the venue, keyed by the signal their clOrdId names."""
    by_account: dict[int, Counter[str]] = {}
    cl_ord_ids: Counter[str] = Counter()
    for account in accounts:
        orders = (await http.get(f"{sim}/admin/orders?accountId={account}")).json()
        signals: Counter[str] = Counter()
        for order in orders:
            cl_ord_id = str(order.get("clOrdId") or "")
            cl_ord_ids[cl_ord_id] += 1
            if order.get("parentId") is None:
                # clOrdId = intent id = "<signal id>-<account id>"
                signal_id, _, owner = cl_ord_id.rpartition("-")
                assert owner == str(account), order
                signals[signal_id] += 1
        by_account[account] = signals
    violations = int((await http.get(f"{sim}/admin/violations")).json()["count"])
    return Venue(by_account, cl_ord_ids, violations)


async def settle_and_check(rig: Rig, burst: Burst, nats_url: str) -> dict[str, Any]:
    """Wait until every accepted signal has reached every account and every intent is
    terminal; then check the must-holds and return the measured numbers."""
    accepted = burst.accepted_ids
    accounts = rig.seeded.account_ids
    sim = rig.system.endpoints.sim
    signals, expected = rig.shape.signals, len(accepted) * len(accounts)
    assert len(accepted) == signals, f"{len(accepted)} distinct signals accepted of {signals}"

    started = time.monotonic()

    async def outbox_drained() -> bool:
        return int((await rig.ingest_health())["outbox_pending"]) == 0

    await until(outbox_drained, 60, "ingest's outbox drained into SIGNALS")
    # -- no 2xx for what was not stored: every accepted signal is in the stream, once
    stored = await stored_signals(nats_url)
    stored_counts = Counter(stored)
    missing = accepted - set(stored_counts)
    assert not missing, f"answered 2xx but not in SIGNALS: {sorted(missing)[:5]}"
    twice = {s: n for s, n in stored_counts.items() if n > 1}
    assert not twice, f"stored more than once: {twice}"

    placed = [0]

    async def every_order_placed() -> bool:
        placed[0] = (await venue(rig.http, sim, accounts)).orders
        return placed[0] >= expected

    try:
        await until(every_order_placed, 90, f"{expected} orders at the venue")
    except AssertionError as exc:  # say how far it got and where the rest stand
        keys = {f"{s}-{a}" for s in accepted for a in accounts}
        where = Counter((await intent_states(nats_url, keys)).values())
        raise AssertionError(f"{exc}: {placed[0]} placed; intent states {dict(where)}") from exc
    placed_s = time.monotonic() - started

    expected_claims = {f"{s}-{a}" for s in accepted for a in accounts}

    async def every_intent_terminal() -> bool:
        return set((await intent_states(nats_url, expected_claims)).values()) <= TERMINAL

    await until(every_intent_terminal, 60, "every intent of the burst terminal")
    states = await intent_states(nats_url, expected_claims)
    # -- every 2xx signal executed exactly once on every account, nothing else traded
    seen = await venue(rig.http, sim, accounts)
    once = Counter(dict.fromkeys(accepted, 1))
    wrong = {
        account: {"missing": len(once - signals), "extra": dict(signals - once)}
        for account, signals in seen.signals_by_account.items()
        if signals != once
    }
    duplicates = {c: n for c, n in seen.cl_ord_ids.items() if n > 1}
    report = (
        f"accounts with other orders than one per accepted signal: {len(wrong)} "
        f"(first: {next(iter(wrong.items()), None)}); duplicate clOrdIds: "
        f"{list(duplicates.items())[:5]}; violations: {seen.violations}; logs in "
        f"{rig.system.log_dir}"
    )
    assert not wrong, report
    assert not duplicates, report
    assert seen.violations == 0, report
    assert Counter(states[k] for k in expected_claims) == Counter(
        {"accepted": len(expected_claims)}
    ), report
    # -- the services are still the processes that started, none exited
    exited = [
        name
        for name, proc in zip(rig.system.names, rig.system.procs, strict=True)
        if proc.poll() is not None
    ]
    assert not exited, f"services exited: {exited}"
    health = await rig.ingest_health()
    assert health["outbox_pending"] == 0, health
    return {
        "webhooks": signals,
        "accounts": len(accounts),
        "burst_s": round(burst.duration_s, 1),
        "first_attempts": dict(burst.first_attempts()),
        "final_2xx": Counter(a.status for a in burst.answers),
        "queued_202": sum(1 for a in burst.answers if a.queued),
        "resent": sum(1 for a in burst.answers if len(a.attempts) > 1),
        "orders": seen.orders,
        "duplicates": len(duplicates),
        "violations": seen.violations,
        "last_order_after_burst_s": round(placed_s, 1),
        "checked_after_burst_s": round(time.monotonic() - started, 1),
    }
