"""Phalanx ledger: positions and realized P&L per account and contract, from fills.

Events are the record: at every start the ledger replays the FILLS and ORDERS streams from their
first message (an ordered consumer per process, see :mod:`phalanx_ledger.follower`) into an
in-memory projection (:mod:`phalanx_ledger.projection`), then keeps following them, and answers
queries over HTTP (:mod:`phalanx_ledger.admin`).
"""

from phalanx_ledger.service import LedgerService, build_ledger
from phalanx_ledger.settings import LedgerSettings

__all__ = ["LedgerService", "LedgerSettings", "build_ledger"]
