"""What the broker says an account holds: per-account REST reads with the login's token.

Reconciliation (ADR-0125) asks the venue, for one account at a time, through the account's
login (its ``AccountRecord``) and that login's current access token (the ``tokens`` bucket,
sealed by auth and opened here with the key ring, ADR-0020):

- ``position/deps?masterid=<account>``: the account's positions — never the cross-account
  ``position/list``;
- ``order/deps?masterid=<account>`` then ``fill/ldeps?masterids=<its orders>``: the account's
  fills (``fill/list`` would mix the login's accounts);
- ``contract/item?id=``: a contract's name, cached (names never change);
- ``fillFee/ldeps?masterids=<fills>``: the commissions and fees of the account's fills
  (a ``FillFee``'s id is its fill's id, ADR-0127).

Any failure — no account record, no or expired token, a refused, penalized, timed-out or
malformed answer — raises :class:`BrokerUnavailable`: the caller records ``unknown``; a report
that did not come is never read as "flat".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from phalanx_common.clock import Clock
from phalanx_common.records import AccountRecord, TokenRecord
from phalanx_tradovate import wire
from phalanx_tradovate.errors import TradovateError
from phalanx_tradovate.rest import TradovateRest

__all__ = ["Broker", "BrokerUnavailable", "TradovateBroker"]


class BrokerUnavailable(Exception):
    """The broker's report could not be had; the reason is safe to show (no token in it)."""


class Broker(Protocol):
    """Per-account reads of the venue (the ledger never sends orders)."""

    async def positions(self, account: AccountRecord) -> list[wire.Position]:
        """The account's positions as the broker reports them."""
        ...

    async def fills(self, account: AccountRecord) -> list[wire.Fill]:
        """Every fill of the account's orders the broker still reports."""
        ...

    async def contract_name(self, account: AccountRecord, contract_id: int) -> str:
        """The dated name of a contract (``MNQZ6``)."""
        ...

    async def fill_fees(self, account: AccountRecord, fill_ids: list[int]) -> list[wire.FillFee]:
        """The ``fillFee`` of each of the account's fills the broker reports."""
        ...


class TradovateBroker:
    """:class:`Broker` over Tradovate's REST API.

    Args:
        rest: The REST client (owned by the caller).
        token_of: The current token of a login (``None`` when auth has none).
        clock: For the token's expiry.
        fills_chunk: Orders per ``fill/ldeps`` request.
    """

    def __init__(
        self,
        rest: TradovateRest,
        token_of: Callable[[str], TokenRecord | None],
        clock: Clock,
        fills_chunk: int = 100,
    ) -> None:
        self._rest = rest
        self._token_of = token_of
        self._clock = clock
        self._chunk = max(1, fills_chunk)
        self._names: dict[int, str] = {}

    def _token(self, account: AccountRecord) -> str:
        record = self._token_of(account.login_id)
        if record is None or not record.access_token:
            raise BrokerUnavailable(f"login {account.login_id} has no access token")
        if record.expires_ns() <= self._clock.time_ns():
            raise BrokerUnavailable(f"the access token of login {account.login_id} expired")
        return record.access_token

    async def positions(self, account: AccountRecord) -> list[wire.Position]:
        token = self._token(account)
        try:
            found = await self._rest.position_deps(token, account.account_id)
        except TradovateError as exc:
            raise BrokerUnavailable(f"position/deps: {type(exc).__name__}: {exc}") from exc
        return [p for p in found if p.accountId in (None, account.account_id)]

    async def fills(self, account: AccountRecord) -> list[wire.Fill]:
        token = self._token(account)
        try:
            orders = await self._rest.order_deps(token, account.account_id)
            order_ids = sorted(o.id for o in orders if o.accountId in (None, account.account_id))
            fills: list[wire.Fill] = []
            for start in range(0, len(order_ids), self._chunk):
                chunk = set(order_ids[start : start + self._chunk])
                found = await self._rest.fill_ldeps(token, sorted(chunk))
                fills += [f for f in found if f.orderId in chunk]
        except TradovateError as exc:
            raise BrokerUnavailable(f"fills: {type(exc).__name__}: {exc}") from exc
        return fills

    async def fill_fees(self, account: AccountRecord, fill_ids: list[int]) -> list[wire.FillFee]:
        token = self._token(account)
        fees: list[wire.FillFee] = []
        try:
            for start in range(0, len(fill_ids), self._chunk):
                chunk = set(fill_ids[start : start + self._chunk])
                found = await self._rest.fill_fee_ldeps(token, sorted(chunk))
                fees += [f for f in found if f.id in chunk]
        except TradovateError as exc:
            raise BrokerUnavailable(f"fillFee/ldeps: {type(exc).__name__}: {exc}") from exc
        return fees

    async def contract_name(self, account: AccountRecord, contract_id: int) -> str:
        name = self._names.get(contract_id)
        if name is not None:
            return name
        token = self._token(account)
        try:
            contract = await self._rest.contract_item(token, contract_id)
        except TradovateError as exc:
            raise BrokerUnavailable(f"contract/item: {type(exc).__name__}: {exc}") from exc
        self._names[contract_id] = contract.name
        return contract.name
