"""The ledger's memory per fill, measured on its real objects (the brief's soak in miniature).

A soak signal is one ``SignalPlanned`` and, per account, an ``OrderAccepted`` (entry and two
bracket legs) and the entry's ``FillReceived`` (optionally its ``FillFees``), each encoded as
on the bus and decoded by :func:`phalanx_common.codec.decode_event`, then handed to the
service's dispatcher (projection, fill index, attribution, fan-out tracking) as the followers
do. The bytes held per fill are the difference of tracemalloc's traced memory between ``n``
and ``2n`` fills, divided by ``n`` (the fixed cost and the warm-up cancel out).

Run as a script for the figures and the breakdown (who holds what, by tracemalloc line and by
holder)::

    .venv/bin/python services/ledger/tests/fill_memory.py [n] [--fees]
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from phalanx_common.codec import decode_event, encode
from phalanx_common.events import (
    AnyEvent,
    FillFees,
    FillReceived,
    OrderAccepted,
    SignalPlanned,
)
from phalanx_ledger.fanout import FanoutTracker
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.service import _dispatcher

__all__ = ["Ledger", "held_per_fill", "soak_messages"]

T0 = 1_796_050_800 * 1_000_000_000  # 2026-12-01T15:00Z
ACCOUNTS = 5  # per signal: the soak's 45,000 intents over 9,000 signals
STRATEGY = "strategy-trend-mnq"


def soak_messages(first: int, count: int, *, fees: bool = False) -> Iterator[bytes]:
    """The bus messages of intents ``first`` .. ``first + count - 1`` (one fill each)."""
    for k in range(first, first + count):
        signal = k // ACCOUNTS
        account = 10_000 + k % ACCOUNTS
        signal_id = f"s{signal:031x}"
        ts = T0 + k * 20_000_000
        if k % ACCOUNTS == 0:
            yield encode(
                SignalPlanned(
                    event_id=f"{ts:016x}{k:016x}",
                    ts_event=ts,
                    ts_init=ts,
                    signal_id=signal_id,
                    strategy_id=STRATEGY,
                    intents=ACCOUNTS,
                    batches=1,
                    received_ns=ts,
                )
            )
        order_id = 5_000_000_000 + 3 * k
        fill_id = 9_000_000_000 + k
        yield encode(
            OrderAccepted(
                event_id=f"{ts + 1:016x}{k:016x}",
                ts_event=ts + 1,
                ts_init=ts + 1,
                intent_id=f"{signal_id}-{account}",
                signal_id=signal_id,
                strategy_id=STRATEGY,
                account_id=account,
                login_id="login-0001",
                symbol="MNQZ6",
                order_id=order_id,
                oso1_id=order_id + 1,
                oso2_id=order_id + 2,
                sent_ns=ts,
            )
        )
        yield encode(
            FillReceived(
                event_id=f"{ts + 2:016x}{k:016x}",
                ts_event=ts + 2,
                ts_init=ts + 2,
                fill_id=fill_id,
                order_id=order_id,
                account_id=account,
                contract_id=3570918,
                symbol="MNQZ6",
                action="Buy" if signal % 2 == 0 else "Sell",  # every other signal closes
                qty=1 + signal % 3,
                price=Decimal("21000.25") + (k % 40) * Decimal("0.25"),
                venue_timestamp="2026-12-01T15:00:00.123Z",
            )
        )
        if fees:
            yield encode(
                FillFees(
                    event_id=f"fees-{fill_id}",
                    ts_event=ts + 3,
                    ts_init=ts + 3,
                    fill_id=fill_id,
                    account_id=account,
                    currency="USD",
                    total=Decimal("0.74"),
                    commission=Decimal("0.50"),
                    exchange_fee=Decimal("0.20"),
                    clearing_fee=Decimal("0.02"),
                    nfa_fee=Decimal("0.02"),
                )
            )


@dataclass
class Ledger:
    """The objects the ledger's followers feed, wired by the service's own dispatcher."""

    projection: PositionsProjection
    fanout: FanoutTracker
    apply: Callable[[AnyEvent], None]
    fed: int = 0

    @classmethod
    def build(cls) -> Ledger:
        projection = PositionsProjection()
        fanout = FanoutTracker(lambda _seconds: None, live=lambda: True)
        return cls(projection, fanout, _dispatcher(projection, fanout))

    def feed(self, count: int, *, fees: bool = False) -> None:
        """Decode and apply the next ``count`` intents' messages."""
        for data in soak_messages(self.fed, count, fees=fees):
            self.apply(decode_event(data))
        self.fed += count


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def held_per_fill(n: int, *, fees: bool = False, warm_up: int = 1_000) -> float:
    """Bytes the ledger holds per fill: traced memory after ``2n`` fills minus after ``n``."""
    ledger = Ledger.build()
    ledger.feed(warm_up, fees=fees)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        ledger.feed(n, fees=fees)
        before = _traced()
        ledger.feed(n, fees=fees)
        after = _traced()
    finally:
        if started:
            tracemalloc.stop()
    assert ledger.projection.fills_applied == warm_up + 2 * n
    return (after - before) / n


def _deep(root: object, seen: set[int]) -> tuple[int, dict[str, int]]:
    """Bytes of the objects reachable from ``root`` not in ``seen`` (then added), by type."""
    sizes: dict[str, int] = {}
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or callable(obj):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        total += size
        name = type(obj).__name__
        sizes[name] = sizes.get(name, 0) + size
        stack.extend(gc.get_referents(obj))
        slots = getattr(type(obj), "__slots__", ())
        if not gc.is_tracked(obj):  # gc=False structs hide their fields from get_referents
            stack.extend(getattr(obj, name) for name in slots if hasattr(obj, name))
    return total, sizes


def _holders(ledger: Ledger) -> dict[str, object]:
    p = ledger.projection
    return {
        "projection.applied (the fills)": p.applied,
        "index: sorted lists (all, per account)": (p.index.all, p.index._by_account),
        "index: fills per order": p.index._by_order,
        "index: by_fill_id": p.index.by_fill_id,
        "index: order_sums": p.index.order_sums,
        "index: totals by day/account": (p.index.by_day, p.index.by_account),
        "attribution and order accounts (OrderIndex)": p.orders,
        "projection._accepted/_rejected": (p._accepted, p._rejected),
        "projection.fees": p.fees,
        "projection._unpaid": p._unpaid,
        "projection._positions": p._positions,
        "fanout (open signals)": ledger.fanout._open,
    }


def _by_holder(ledger: Ledger) -> dict[str, tuple[int, dict[str, int]]]:
    seen: set[int] = set()
    return {name: _deep(root, seen) for name, root in _holders(ledger).items()}


def main(argv: list[str]) -> None:
    fees = "--fees" in argv
    numbers = [int(a) for a in argv if a.isdigit()]
    n = numbers[0] if numbers else 20_000
    print(f"held per fill, n={n}, fees={fees}: {held_per_fill(n, fees=fees):.0f} bytes")
    ledger = Ledger.build()
    ledger.feed(1_000, fees=fees)
    tracemalloc.start(10)
    ledger.feed(n, fees=fees)
    gc.collect()
    first, holders_n = tracemalloc.take_snapshot(), _by_holder(ledger)
    ledger.feed(n, fees=fees)
    gc.collect()
    second, holders_2n = tracemalloc.take_snapshot(), _by_holder(ledger)
    tracemalloc.stop()
    print("\nby tracemalloc line (bytes per fill, blocks per fill):")
    for stat in second.compare_to(first, "lineno")[:20]:
        if abs(stat.size_diff) >= n:
            print(f"  {stat.size_diff / n:7.1f} {stat.count_diff / n:5.2f}  {stat.traceback[0]}")
    print("\nby holder (sys.getsizeof of what each holds first; bytes per fill):")
    for name, (size, types) in holders_2n.items():
        grown = (size - holders_n[name][0]) / n
        kinds = ", ".join(
            f"{kind} {(bytes_ - holders_n[name][1].get(kind, 0)) / n:.0f}"
            for kind, bytes_ in sorted(types.items(), key=lambda item: -item[1])
            if abs(bytes_ - holders_n[name][1].get(kind, 0)) >= n
        )
        print(f"  {grown:7.1f}  {name}: {kinds}")


if __name__ == "__main__":
    main(sys.argv[1:])
