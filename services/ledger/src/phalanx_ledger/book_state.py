"""The ledger's book as bytes, and back (pure, no I/O; ADR-0122).

A snapshot holds everything :class:`~phalanx_ledger.projection.PositionsProjection` knows —
positions, every applied fill with the P&L it realized, fills held for their account, order
outcomes, the order -> account and order -> attribution maps, counters — plus the stream
sequences it covers (the last FILLS and ORDERS message applied). Restored, it is the projection
those messages built, so a follower starting after those sequences continues exactly where the
snapshot ended.

Encoding: a 4-byte magic, a format version, then zlib-compressed MessagePack (msgspec). Any
change to what the book holds bumps :data:`FORMAT_VERSION`; a snapshot of another version, or
one that does not decode, raises :class:`SnapshotUnreadable` and the ledger rebuilds from the
streams (logged). The version before (2: each fill as its ``FillReceived``, each fee report as
its ``FillFees``, orders as maps) is still read, converted to the compact records of ADR-0184:
with a history limit on the streams, a rebuild would miss what aged out. ``test_book_state``
fails when the projection gains an attribute this module does not carry, so a new field cannot
be silently lost at a restart.
"""

from __future__ import annotations

import struct
import sys
import zlib
from decimal import Decimal

import msgspec

from phalanx_common.events import FillFees, FillReceived
from phalanx_ledger.attribution import Acceptance, Attribution, OrderIndex
from phalanx_ledger.fill_records import AppliedFill, FeeReport, SharedDecimals
from phalanx_ledger.projection import PositionsProjection, _Position

__all__ = [
    "FORMAT_VERSION",
    "BookState",
    "Covered",
    "SnapshotUnreadable",
    "capture",
    "decode_book",
    "encode_book",
    "restore",
]

#: Bump on any change of :class:`BookState` or of what the projection holds.
FORMAT_VERSION = 3  # 2: the venue's fees per fill (ADR-0127); 3: compact records (ADR-0184)
_READABLE = (2, FORMAT_VERSION)
_MAGIC = b"PXLB"
_HEADER = struct.Struct(">4sI")

#: The projection's attributes a snapshot carries (``test_book_state`` compares this with a
#: fresh projection's, so an attribute added there must be added here too).
CARRIED = frozenset(
    {
        "_contracts",  # the contract table: loaded, not stored
        "orders",
        "applied",
        "index",  # rebuilt from ``applied``
        "_positions",
        "_held_ids",  # rebuilt: the held fills' ids
        "_accepted",
        "_rejected",
        "_unattributed",
        "fills_applied",  # rebuilt: len(applied)
        "duplicate_fills",
        "fees",  # the venue's fee reports (ADR-0127)
        "_unpaid",  # rebuilt: applied fills without a fee report
        "decimals",  # a cache of shared values: not stored
    }
)


class SnapshotUnreadable(Exception):
    """A snapshot that cannot be used (other version, truncated, corrupt)."""


class Covered(msgspec.Struct, frozen=True, kw_only=True):
    """The last message of each stream a snapshot includes (0: none)."""

    fills_seq: int = 0
    orders_seq: int = 0


class PositionState(msgspec.Struct, frozen=True, array_like=True):
    """One position's numbers (its product spec is looked up again on restore)."""

    account_id: int
    symbol: str
    contract_id: int
    net_pos: int
    avg_price: Decimal | None
    realized_pnl: Decimal
    fill_count: int
    bought: int
    sold: int
    last_fill_id: int
    updated_ns: int


class BookState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the projection holds, and the stream sequences it covers."""

    covered: Covered
    taken_ns: int
    positions: list[PositionState]
    applied: list[AppliedFill]
    held: list[FillReceived]
    accepted: dict[int, list[str]]
    rejected: dict[int, list[str]]
    order_accounts: dict[int, int]  # only where not the order's acceptance's account
    orders: list[Acceptance]
    duplicate_fills: int
    fees: list[FeeReport] = []


class _AppliedFillV2(msgspec.Struct, frozen=True, kw_only=True):
    """A fill as format 2 stored it."""

    fill: FillReceived
    realized_pnl: Decimal
    realized_pnl_money: Decimal | None
    currency: str


class _BookStateV2(msgspec.Struct, frozen=True, kw_only=True):
    """:class:`BookState` as format 2 stored it (fills and fee reports as their events)."""

    covered: Covered
    taken_ns: int
    positions: list[PositionState]
    applied: list[_AppliedFillV2]
    held: list[FillReceived]
    accepted: dict[int, list[str]]
    rejected: dict[int, list[str]]
    order_accounts: dict[int, int]
    orders: dict[int, Attribution]
    duplicate_fills: int
    fees: list[FillFees] = []

    def upgraded(self) -> BookState:
        """The same state in format 3."""
        orders = OrderIndex()
        orders.restore_attributions(self.orders, self.order_accounts)
        return BookState(
            covered=self.covered,
            taken_ns=self.taken_ns,
            positions=self.positions,
            applied=[
                AppliedFill(
                    fill_id=a.fill.fill_id,
                    order_id=a.fill.order_id,
                    account_id=a.fill.account_id,
                    contract_id=a.fill.contract_id,
                    symbol=a.fill.symbol,
                    action=a.fill.action,
                    qty=a.fill.qty,
                    price=a.fill.price,
                    ts_event=a.fill.ts_event,
                    realized_pnl=a.realized_pnl,
                    realized_pnl_money=a.realized_pnl_money,
                    currency=a.currency,
                )
                for a in self.applied
            ],
            held=self.held,
            accepted=self.accepted,
            rejected=self.rejected,
            order_accounts=orders.other_accounts(),
            orders=orders.acceptances(),
            duplicate_fills=self.duplicate_fills,
            fees=[
                FeeReport(fill_id=f.fill_id, currency=f.currency, total=f.total) for f in self.fees
            ],
        )


class _Sharing:
    """Decoded records share their repeated values again, as the live book's do."""

    def __init__(self, decimals: SharedDecimals) -> None:
        self.decimal = decimals.of
        self._ints: dict[int, int] = {}

    def int(self, value: int) -> int:
        return self._ints.setdefault(value, value)

    def fill(self, a: AppliedFill) -> AppliedFill:
        money = a.realized_pnl_money
        return AppliedFill(
            fill_id=a.fill_id,
            order_id=a.order_id,
            account_id=self.int(a.account_id),
            contract_id=self.int(a.contract_id),
            symbol=sys.intern(a.symbol),
            action="Buy" if a.action == "Buy" else "Sell",
            qty=a.qty,
            price=self.decimal(a.price),
            ts_event=a.ts_event,
            realized_pnl=self.decimal(a.realized_pnl),
            realized_pnl_money=None if money is None else self.decimal(money),
            currency=sys.intern(a.currency),
        )

    def fees(self, report: FeeReport, applied: AppliedFill | None) -> FeeReport:
        return FeeReport(
            fill_id=report.fill_id if applied is None else applied.fill_id,
            currency=sys.intern(report.currency),
            total=self.decimal(report.total),
        )


def capture(projection: PositionsProjection, covered: Covered, taken_ns: int) -> BookState:
    """The projection's state now (call between two events: it is read without a lock)."""
    return BookState(
        covered=covered,
        taken_ns=taken_ns,
        positions=[
            PositionState(
                account_id=p.account_id,
                symbol=p.symbol,
                contract_id=p.contract_id,
                net_pos=p.net_pos,
                avg_price=p.avg_price,
                realized_pnl=p.realized_pnl,
                fill_count=p.fill_count,
                bought=p.bought,
                sold=p.sold,
                last_fill_id=p.last_fill_id,
                updated_ns=p.updated_ns,
            )
            for p in projection._positions.values()
        ],
        applied=list(projection.applied),
        held=[fill for held in projection._unattributed.values() for fill in held],
        accepted={account: sorted(ids) for account, ids in projection._accepted.items()},
        rejected={account: sorted(ids) for account, ids in projection._rejected.items()},
        order_accounts=projection.orders.other_accounts(),
        orders=projection.orders.acceptances(),
        duplicate_fills=projection.duplicate_fills,
        fees=list(projection.fees.values()),
    )


def restore(state: BookState, projection: PositionsProjection) -> None:
    """Make a fresh projection (nothing applied yet) hold exactly what ``state`` describes.

    Raises:
        ValueError: the projection already holds something.
    """
    if projection.fills_applied or projection._held_ids or projection._accepted:
        raise ValueError("restore into a fresh projection only")
    book = projection._contracts
    sharing = _Sharing(projection.decimals)
    for p in state.positions:
        symbol = sys.intern(p.symbol)
        projection._positions[(p.account_id, symbol)] = _Position(
            account_id=sharing.int(p.account_id),
            symbol=symbol,
            contract_id=sharing.int(p.contract_id),
            spec=book.product_of(p.symbol),
            net_pos=p.net_pos,
            avg_price=p.avg_price,
            realized_pnl=p.realized_pnl,
            fill_count=p.fill_count,
            bought=p.bought,
            sold=p.sold,
            last_fill_id=p.last_fill_id,
            updated_ns=p.updated_ns,
        )
    projection.applied = [sharing.fill(applied) for applied in state.applied]
    projection.index.extend(projection.applied)
    for fill in state.held:
        projection._unattributed.setdefault(fill.order_id, []).append(fill)
        projection._held_ids.add(fill.fill_id)
    # an accepted intent's id is its acceptance's string, as when both came from one event
    intents = {record.intent_id: record.intent_id for record in state.orders}
    projection._accepted = {
        account: {intents.get(i, i) for i in ids} for account, ids in state.accepted.items()
    }
    del intents
    projection._rejected = {account: set(ids) for account, ids in state.rejected.items()}
    projection.orders.restore(state.orders, state.order_accounts)
    projection.fills_applied = len(state.applied)
    projection.duplicate_fills = state.duplicate_fills
    by_fill_id = projection.index.by_fill_id
    projection.fees = {
        report.fill_id: sharing.fees(report, by_fill_id.get(report.fill_id))
        for report in state.fees
    }
    for applied in projection.applied:
        report = projection.fees.get(applied.fill_id)
        if report is None:
            projection._unpaid.setdefault(applied.account_id, set()).add(applied.fill_id)
        else:
            projection.index.add_fees(applied, report)


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(BookState)
_decoder_v2 = msgspec.msgpack.Decoder(_BookStateV2)


def encode_book(state: BookState, level: int = 1) -> bytes:
    """The snapshot's bytes: header, then the compressed state."""
    return _HEADER.pack(_MAGIC, FORMAT_VERSION) + zlib.compress(_encoder.encode(state), level)


def decode_book(data: bytes) -> BookState:
    """The state in a snapshot's bytes.

    Raises:
        SnapshotUnreadable: another format version, or bytes that do not decode.
    """
    if len(data) < _HEADER.size:
        raise SnapshotUnreadable(f"{len(data)} bytes: shorter than the header")
    magic, version = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise SnapshotUnreadable(f"not a ledger snapshot (magic {magic!r})")
    if version not in _READABLE:
        raise SnapshotUnreadable(f"format version {version}, this ledger reads {_READABLE}")
    try:
        payload = zlib.decompress(data[_HEADER.size :])
        if version == 2:
            return _decoder_v2.decode(payload).upgraded()
        return _decoder.decode(payload)
    except (zlib.error, msgspec.DecodeError) as exc:
        raise SnapshotUnreadable(f"does not decode: {exc}") from exc
