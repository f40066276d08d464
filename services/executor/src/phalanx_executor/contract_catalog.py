"""The venue's contracts this replica knows: dated symbol <-> contract id.

A symbol is looked up once per replica (``contract/find``), however many intents ask at once,
with the first asking login's socket and budget; if that lookup fails, a waiter of another
login looks it up with its own. Names of contract ids (for fills) are looked up the same way
(``contract/item``). Contracts in sync snapshots and events are learned as they come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from phalanx_tradovate import TradovateError, TradovateSocket, wire

__all__ = ["ContractCatalog"]

log = logging.getLogger(__name__)


class ContractCatalog:
    """Contract ids by dated symbol and names by id, looked up at the venue when missing."""

    def __init__(
        self,
        socket_for: Callable[[str], Awaitable[TradovateSocket]],
        permit: Callable[[str], Awaitable[None]] | None = None,
        honour: Callable[[str, TradovateError], Awaitable[None]] | None = None,
    ) -> None:
        self._socket_for = socket_for
        self._permit = permit
        self._honour = honour  # a penalty or lockout on a lookup blocks the login (ADR-0056)
        self._names: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._lookups: dict[str, tuple[str, asyncio.Future[int]]] = {}  # symbol -> (login, lookup)

    async def contract_id(self, login_id: str, symbol: str) -> int:
        """The venue's id of a dated symbol (looked up once per replica, then cached).

        One lookup per symbol, however many intents ask at once, made with the first asking
        login's socket and budget. If it fails (that login is penalised, locked out, or its
        token expired), a waiter of *another* login looks the symbol up with its own: one
        login's trouble never fails another login's intents.
        """
        while True:
            cid = self._ids.get(symbol)
            if cid is not None:
                return cid
            found = self._lookups.get(symbol)
            if found is None:
                lookup = asyncio.ensure_future(self._find_contract(login_id, symbol))
                self._lookups[symbol] = (login_id, lookup)
                lookup.add_done_callback(lambda done: self._lookup_done(symbol, done))
                return await asyncio.shield(lookup)
            owner, pending = found
            if owner == login_id:
                return await asyncio.shield(pending)
            try:
                return await asyncio.shield(pending)
            except Exception as exc:  # the other login's lookup failed: try with this one
                self._lookup_done(symbol, pending)
                log.info(
                    "contract %s: the lookup of login %s failed (%s); login %s looks it up",
                    symbol,
                    owner,
                    exc,
                    login_id,
                )

    def _lookup_done(self, symbol: str, done: asyncio.Future[int]) -> None:
        found = self._lookups.get(symbol)
        if found is not None and found[1] is done:
            del self._lookups[symbol]

    async def _find_contract(self, login_id: str, symbol: str) -> int:
        sock = await self._socket_for(login_id)
        if self._permit is not None:
            await self._permit(login_id)
        try:
            contract = await sock.contract_find(symbol)
        except TradovateError as exc:
            if self._honour is not None:
                await self._honour(login_id, exc)
            raise
        self.learn(contract)
        return contract.id

    def learn(self, contract: wire.Contract) -> None:
        """Remember a contract's id and name (from a snapshot, an event or a lookup)."""
        self._names[contract.id] = contract.name
        self._ids[contract.name] = contract.id

    async def name(self, login_id: str, contract_id: int) -> str:
        """The name of a contract id (looked up once with ``login_id``'s socket and budget)."""
        name = self._names.get(contract_id)
        if name is None:
            sock = await self._socket_for(login_id)
            if self._permit is not None:
                await self._permit(login_id)
            try:
                contract = await sock.contract_item(contract_id)
            except TradovateError as exc:
                if self._honour is not None:
                    await self._honour(login_id, exc)
                raise
            self.learn(contract)
            name = contract.name
        return name
