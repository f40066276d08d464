"""Switch a drifted account to REDUCING, the way the executor's admin API sets a state.

The executor's gates read the ``trading_state`` bucket (key ``account.<id>``, a
``TradingStateRecord``) and refuse entries of an account that is REDUCING; a
``TradingStateChanged`` on ``control.state`` tells operators. The ledger writes the same record
and publishes the same event — it never imports the executor. It only ever tightens: an account
already REDUCING or HALTED is left as it is, and the write is a compare-and-set on the key's
revision, so a state an operator set meanwhile is not overwritten (ADR-0125).
"""

from __future__ import annotations

import logging

from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.codec import decode, encode
from phalanx_common.events import TradingStateChanged
from phalanx_common.records import TradingStateRecord

__all__ = ["reduce_account"]

log = logging.getLogger(__name__)


async def reduce_account(bus: Bus, account_id: int, reason: str, now_ns: int) -> bool:
    """Set ``account.<id>`` to REDUCING unless it is already REDUCING or HALTED.

    Returns:
        Whether the state was changed.
    """
    kv = await bus.key_value(subjects.Buckets.TRADING_STATE)
    scope = f"account.{int(account_id)}"
    revision = 0
    try:
        entry = await kv.get(scope)
    except KeyNotFoundError:
        entry = None
    if entry is not None and entry.value:
        current = decode(entry.value, TradingStateRecord)
        if current.state != "ACTIVE":
            return False
        revision = int(entry.revision or 0)
    record = TradingStateRecord(scope=scope, state="REDUCING", reason=reason, updated_ns=now_ns)
    try:
        if revision:
            await kv.update(scope, encode(record), last=revision)
        else:
            await kv.create(scope, encode(record))
    except (KeyWrongLastSequenceError, APIError) as exc:  # someone set it meanwhile
        log.warning("account %s: not switched to REDUCING: %s", account_id, exc)
        return False
    await bus.publish(
        subjects.CONTROL_STATE,
        TradingStateChanged(
            event_id=ids.new_event_id(),
            ts_event=now_ns,
            ts_init=now_ns,
            scope=scope,
            state="REDUCING",
            reason=reason,
        ),
    )
    return True
