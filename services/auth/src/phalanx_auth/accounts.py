"""A login's broker accounts: the linked set in memory, matching it to the venue's list
(``AccountLinked`` / ``AccountUnlinked``), and periodic discovery."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from phalanx_auth.counters import AuthMetrics
from phalanx_auth.locks import LoginLocks
from phalanx_auth.store import AuthStore
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.events import AccountLinked, AccountUnlinked
from phalanx_common.ids import new_event_id
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, LoginStatus, TokenRecord
from phalanx_tradovate import wire
from phalanx_tradovate.errors import TradovateError
from phalanx_tradovate.rest import TradovateRest

__all__ = ["AccountBook", "AccountDiscovery"]

log = logging.getLogger(__name__)


class AccountBook:
    """The linked accounts: own writes plus a watch on the accounts bucket once opened.

    Kept by login as well as by account, so a login's accounts are found without going through
    every account (linking 2,000 logins under 10,000 accounts was quadratic, ADR-0170). Before
    :meth:`open` the book reads the bucket itself (one listing for the whole bucket).

    Args:
        store: the KV projections.
        bus: where link changes are announced.
        clock: injected time.
        metrics: the service's counters.
    """

    def __init__(self, store: AuthStore, bus: Bus, clock: Clock, metrics: AuthMetrics) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._accounts: dict[int, AccountRecord] = {}
        self._by_login: dict[str, dict[int, AccountRecord]] = {}
        self._mirror: KvMirror[AccountRecord] | None = None

    async def open(self) -> None:
        """Load the bucket and follow it (idempotent)."""
        if self._mirror is not None:
            return
        mirror: KvMirror[AccountRecord] = KvMirror(
            self._store.accounts_kv, AccountRecord, "auth-accounts"
        )
        mirror.on_change(self._on_change)
        await mirror.start()
        for record in mirror.values():
            self._remember(record)
        self._mirror = mirror

    async def close(self) -> None:
        """Stop following the bucket (idempotent)."""
        if self._mirror is not None:
            await self._mirror.stop()
            self._mirror = None

    def _remember(self, record: AccountRecord) -> None:
        self._forget(record.account_id)
        self._accounts[record.account_id] = record
        self._by_login.setdefault(record.login_id, {})[record.account_id] = record

    def _forget(self, account_id: int) -> None:
        before = self._accounts.pop(account_id, None)
        if before is None:
            return
        of_login = self._by_login.get(before.login_id)
        if of_login is not None:
            of_login.pop(account_id, None)
            if not of_login:
                del self._by_login[before.login_id]

    def _on_change(self, key: str, record: AccountRecord | None) -> None:
        if record is None:
            with contextlib.suppress(ValueError):
                self._forget(int(key))
        else:
            self._remember(record)

    async def accounts_of(self, login_id: str) -> list[AccountRecord]:
        """The linked accounts of a login (from memory once opened, else from KV)."""
        if self._mirror is not None:
            values = list(self._by_login.get(login_id, {}).values())
        else:
            values = [a for a in await self._store.list_accounts() if a.login_id == login_id]
        return sorted(values, key=lambda a: a.account_id)

    async def sync(
        self, login_id: str, user_id: int, accounts: list[wire.Account], now: int
    ) -> list[AccountRecord]:
        """Make the account records of a login match the venue's list; publish the changes."""
        subject = subjects.auth_subject(login_id)
        current = {a.account_id: a for a in await self.accounts_of(login_id)}
        records = [
            AccountRecord(
                account_id=a.id,
                account_spec=a.name,
                login_id=login_id,
                user_id=user_id,
                active=a.active is not False and not a.archived,
            )
            for a in accounts
        ]
        for record in records:
            before = current.pop(record.account_id, None)
            if before == record:
                continue
            await self._store.put_account(record)
            self._remember(record)
            if before is None or before.account_spec != record.account_spec:
                self._metrics.accounts_linked += 1
                await self._bus.publish(
                    subject,
                    AccountLinked(
                        event_id=new_event_id(),
                        ts_event=now,
                        ts_init=self._clock.time_ns(),
                        account_id=record.account_id,
                        account_spec=record.account_spec,
                        login_id=login_id,
                        user_id=user_id,
                    ),
                    msg_id=f"linked-{login_id}-{record.account_id}-{now}",
                )
        for gone in current.values():
            await self.unlink(gone, "the venue no longer lists this account", now)
        return records

    async def unlink(self, account: AccountRecord, reason: str, now: int) -> None:
        """Delete an account's record and announce ``AccountUnlinked``."""
        await self._store.delete_account(account.account_id)
        self._forget(account.account_id)
        self._metrics.accounts_unlinked += 1
        await self._bus.publish(
            subjects.auth_subject(account.login_id),
            AccountUnlinked(
                event_id=new_event_id(),
                ts_event=now,
                ts_init=self._clock.time_ns(),
                account_id=account.account_id,
                login_id=account.login_id,
                reason=reason,
            ),
            msg_id=f"unlinked-{account.login_id}-{account.account_id}-{now}",
        )
        log.info("account %d unlinked from %s: %s", account.account_id, account.login_id, reason)


class AccountDiscovery:
    """Lists active logins' accounts at the venue and links/unlinks to match.

    Args:
        store: the KV projections.
        rest: the venue's REST client.
        clock: injected time.
        metrics: the service's counters.
        book: the linked accounts.
        locks: the per-login locks.
        token_for: a usable token of a login, or ``None``.
    """

    def __init__(
        self,
        store: AuthStore,
        rest: TradovateRest,
        clock: Clock,
        metrics: AuthMetrics,
        book: AccountBook,
        locks: LoginLocks,
        token_for: Callable[[str], Awaitable[TokenRecord | None]],
    ) -> None:
        self._store = store
        self._rest = rest
        self._clock = clock
        self._metrics = metrics
        self._book = book
        self._locks = locks
        self._token_for = token_for

    async def run(self, every_s: float) -> None:
        """Re-discover every ``every_s`` seconds, for ever (a failed pass is logged)."""
        while True:
            await self._clock.sleep(every_s)
            try:
                await self.discover_all()
            except Exception:
                log.exception("discovery pass failed")

    async def discover_all(self) -> None:
        """Re-discover the accounts of every active login."""
        for login in await self._store.list_logins():
            if login.status == LoginStatus.ACTIVE:
                await self.discover(login.login_id)

    async def discover(self, login_id: str) -> list[AccountRecord] | None:
        """List one login's accounts at the venue and link/unlink to match; ``None`` on failure."""
        login = await self._store.get_login(login_id)
        if login is None or login.status != LoginStatus.ACTIVE:
            return None
        token = await self._token_for(login_id)
        if token is None:
            return None
        try:
            accounts = await self._rest.account_list(token.access_token)
        except TradovateError as exc:
            log.warning("login %s: account discovery failed (%s)", login_id, exc)
            return None
        self._metrics.discoveries += 1
        async with self._locks(login_id):
            return await self._book.sync(login_id, login.user_id, accounts, self._clock.time_ns())
