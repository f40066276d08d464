"""How many bytes the venue holds per order: drive the venue core in-process, measure with
tracemalloc (ADR-0187).

Each *pair* is what a signal and its exit make on one account, as the executor sends them: a
``placeoso`` (Market entry, Limit take-profit, Stop loss; the entry fills at once, its brackets
work) and a ``liquidateposition`` (both brackets canceled, a Market order closes the position):
four orders. Requests go through :meth:`Venue.handle`, so the request log, admission and the
entity indexes see them as they would over a socket.

The venue's clock is simulated: it moves ``1 / pairs_per_s`` seconds per pair (10 pairs a
second by default, the soak's rate of signals), so retentions in seconds mean what they would
at that rate, and a run of an hour's orders takes the seconds its CPU needs.

``python -m phalanx_sim.memory_probe [--pairs 2000 6000] [--accounts 25] [--rate 10]`` prints
the bytes held per order (the difference between two runs of different sizes, divided by the
orders added), the allocation sites that hold them, and what is held at the end.
``PHALANX_SIM_*`` settings apply (e.g. ``PHALANX_SIM_FINISHED_ORDERS_MAX``).
"""

from __future__ import annotations

import argparse
import gc
import linecache
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from phalanx_sim.settings import SimSettings, load_sim_settings
from phalanx_sim.state import Session
from phalanx_sim.times import VenueClock
from phalanx_sim.venue import Venue

__all__ = ["ORDERS_PER_PAIR", "Held", "SteppedClock", "TradingDesk", "held_per_order", "main"]

#: orders one pair creates: the entry, its two brackets and the closing order
ORDERS_PER_PAIR = 4
_SYMBOL = "MNQZ6"


class SteppedClock(VenueClock):
    """A venue clock that moves only when the probe steps it."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        super().__init__()
        self.now = start

    def time(self) -> float:
        """The simulated epoch seconds."""
        return self.now


class TradingDesk:
    """One login with accounts on a venue, trading entry+exit pairs round-robin.

    With a ``clock``, each pair moves it ``1 / pairs_per_s`` seconds.
    """

    def __init__(
        self,
        venue: Venue,
        accounts: int,
        name: str = "probe",
        clock: SteppedClock | None = None,
        pairs_per_s: float = 10.0,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self.step_s = 1.0 / pairs_per_s
        created = venue.create_user(name, "pw", accounts)
        self.accounts = [(a["id"], a["name"]) for a in created.accounts]
        self.session: Session = venue.issue_session(venue.state.users[created.userId])
        info = venue.contracts.resolve(_SYMBOL)
        assert info is not None
        self.contract_id = info.contract.id
        self.price = venue.engine.price(info)
        self.sent = 0

    def trade(self, pairs: int) -> None:
        """Send ``pairs`` entry+exit pairs, one account after another."""
        for _ in range(pairs):
            account_id, name = self.accounts[self.sent % len(self.accounts)]
            self.entry(account_id, name, f"probe-{self.sent}")
            self.exit(account_id)
            self.sent += 1
            if self.clock is not None:
                self.clock.now += self.step_s

    def entry(self, account_id: int, name: str, cl_ord_id: str) -> int:
        """A Market Buy with a take-profit 10 points up and a stop 10 points down."""
        body = {
            "accountSpec": name,
            "accountId": account_id,
            "action": "Buy",
            "symbol": _SYMBOL,
            "orderQty": 1,
            "orderType": "Market",
            "isAutomated": True,
            "clOrdId": cl_ord_id,
            "bracket1": {"action": "Sell", "orderType": "Limit", "price": self.price + 10},
            "bracket2": {"action": "Sell", "orderType": "Stop", "stopPrice": self.price - 10},
        }
        reply = self.venue.handle("order/placeoso", self.session, "", msgspec.json.encode(body))
        order_id = getattr(reply.payload, "orderId", None)
        if reply.status != 200 or not isinstance(order_id, int):
            raise RuntimeError(f"placeoso refused: {reply.status} {reply.payload!r}")
        return order_id

    def exit(self, account_id: int) -> None:
        """Liquidate the account's position (cancels the brackets, closes at market)."""
        body = {"accountId": account_id, "contractId": self.contract_id, "admin": False}
        reply = self.venue.handle(
            "order/liquidateposition", self.session, "", msgspec.json.encode(body)
        )
        if reply.status != 200 or getattr(reply.payload, "orderId", None) is None:
            raise RuntimeError(f"liquidateposition refused: {reply.status} {reply.payload!r}")


@dataclass(frozen=True, slots=True)
class Held:
    """Bytes held per order between two runs, in total and by allocation site."""

    per_order: float
    orders_added: int
    total_bytes: int
    by_site: list[tuple[str, float]]
    #: bytes traced at the end (the venue and everything it holds after both runs)
    held_at_end: int
    #: orders the venue still holds at the end
    orders_at_end: int


def held_per_order(
    settings: SimSettings,
    warm_pairs: int,
    more_pairs: int,
    accounts: int = 25,
    pairs_per_s: float = 10.0,
    sites: int = 12,
) -> Held:
    """Trade ``warm_pairs``, then ``more_pairs`` more; the bytes the second run added per order.

    Rate limits are switched off (one login sends everything); every other setting applies.
    The venue's clock moves ``1 / pairs_per_s`` seconds per pair.
    """
    quiet = msgspec.structs.replace(settings, sim_rate_limits=False)
    # traced from the start: an object made before tracing and freed later would not count,
    # and its replacement would look like growth
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    try:
        clock = SteppedClock()
        venue = Venue(quiet, clock)
        desk = TradingDesk(venue, accounts, clock=clock, pairs_per_s=pairs_per_s)
        desk.trade(warm_pairs)
        gc.collect()
        before = tracemalloc.take_snapshot()
        desk.trade(more_pairs)
        gc.collect()
        after = tracemalloc.take_snapshot()
        held_at_end = tracemalloc.get_traced_memory()[0]
    finally:
        if started:
            tracemalloc.stop()
    keep = [tracemalloc.Filter(True, "*phalanx_sim*"), tracemalloc.Filter(True, "*msgspec*")]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "lineno")
    orders = more_pairs * ORDERS_PER_PAIR
    total = sum(stat.size_diff for stat in diff)
    top = sorted(diff, key=lambda s: s.size_diff, reverse=True)[:sites]
    by_site = [(_site(stat.traceback[0]), stat.size_diff / orders) for stat in top]
    return Held(total / orders, orders, total, by_site, held_at_end, len(venue.state.orders))


def _site(frame: tracemalloc.Frame) -> str:
    name = frame.filename.rsplit("/", 1)[-1]
    code = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{name}:{frame.lineno} {code[:60]}"


def main(argv: Sequence[str] | None = None) -> None:
    """Print the bytes held per order (``--help`` for the options)."""
    parser = argparse.ArgumentParser(prog="python -m phalanx_sim.memory_probe")
    parser.add_argument("--pairs", type=int, nargs=2, default=(2000, 6000), metavar=("N1", "N2"))
    parser.add_argument("--accounts", type=int, default=25)
    parser.add_argument("--rate", type=float, default=10.0, help="pairs per simulated second")
    args = parser.parse_args(argv)
    warm, total = args.pairs
    if total <= warm:
        parser.error("N2 must be larger than N1")
    held = held_per_order(load_sim_settings(), warm, total - warm, args.accounts, args.rate)
    print(
        f"{held.per_order:,.0f} bytes held per order "
        f"({held.total_bytes:,} bytes for {held.orders_added:,} more orders, "
        f"{warm:,} -> {total:,} pairs of {ORDERS_PER_PAIR} orders on {args.accounts} accounts, "
        f"{args.rate:g} pairs per simulated second)"
    )
    for site, per_order in held.by_site:
        print(f"  {per_order:8,.0f}  {site}")
    print(
        f"held at the end: {held.held_at_end / 2**20:,.1f} MiB traced, "
        f"{held.orders_at_end:,} orders kept of {total * ORDERS_PER_PAIR:,}"
    )


if __name__ == "__main__":
    main()
