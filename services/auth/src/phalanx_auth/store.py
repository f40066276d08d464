"""The auth service's KV projections: logins, tokens and accounts.

Keys: ``logins/<login_id>``, ``tokens/<login_id>`` and ``accounts/<account_id>``. Only auth writes
them; tokens are updated with compare-and-set on the KV revision so two renewers never overwrite
each other. (Encryption of the token bucket at rest is the later auth issue; the record type
already keeps the token out of ``repr``.)
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from phalanx_common import codec
from phalanx_common.records import AccountRecord, LoginRecord, TokenRecord

__all__ = ["AuthStore"]

R = TypeVar("R", bound=msgspec.Struct)


class AuthStore:
    """Typed access to the ``logins``, ``tokens`` and ``accounts`` buckets.

    Args:
        logins: the ``Buckets.LOGINS`` bucket.
        tokens: the ``Buckets.TOKENS`` bucket.
        accounts: the ``Buckets.ACCOUNTS`` bucket.
    """

    def __init__(self, logins: KeyValue, tokens: KeyValue, accounts: KeyValue) -> None:
        self._logins = logins
        self._tokens = tokens
        self._accounts = accounts

    @staticmethod
    async def _get(kv: KeyValue, key: str, type_: type[R]) -> tuple[R, int] | None:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # also raised for deleted keys
            return None
        if entry.value is None:
            return None
        return codec.decode(entry.value, type_), int(entry.revision or 0)

    @staticmethod
    async def _keys(kv: KeyValue) -> list[str]:
        try:
            return sorted(await kv.keys())
        except NoKeysError:
            return []

    async def _all(self, kv: KeyValue, type_: type[R]) -> list[R]:
        out: list[R] = []
        for key in await self._keys(kv):
            found = await self._get(kv, key, type_)
            if found is not None:
                out.append(found[0])
        return out

    # -- logins -------------------------------------------------------------------------------

    async def get_login(self, login_id: str) -> LoginRecord | None:
        """The login record, or ``None``."""
        found = await self._get(self._logins, login_id, LoginRecord)
        return found[0] if found else None

    async def put_login(self, record: LoginRecord) -> None:
        """Write a login record."""
        await self._logins.put(record.login_id, codec.encode(record))

    async def list_logins(self) -> list[LoginRecord]:
        """Every login, by id."""
        return await self._all(self._logins, LoginRecord)

    # -- tokens -------------------------------------------------------------------------------

    async def get_token(self, login_id: str) -> tuple[TokenRecord, int] | None:
        """The token record and its KV revision, or ``None``."""
        return await self._get(self._tokens, login_id, TokenRecord)

    async def put_token(self, record: TokenRecord) -> int:
        """Write a token record unconditionally (after a fresh login); returns the revision."""
        return int(await self._tokens.put(record.login_id, codec.encode(record)))

    async def update_token(self, record: TokenRecord, revision: int) -> int | None:
        """Compare-and-set a token record; ``None`` when the revision is no longer current."""
        try:
            return int(await self._tokens.update(record.login_id, codec.encode(record), revision))
        except KeyWrongLastSequenceError:
            return None

    async def token_login_ids(self) -> list[str]:
        """Ids of the logins that have a token record."""
        return await self._keys(self._tokens)

    # -- accounts -----------------------------------------------------------------------------

    async def put_account(self, record: AccountRecord) -> None:
        """Write an account record (key: the account id)."""
        await self._accounts.put(str(record.account_id), codec.encode(record))

    async def get_account(self, account_id: int) -> AccountRecord | None:
        """The account record, or ``None``."""
        found = await self._get(self._accounts, str(account_id), AccountRecord)
        return found[0] if found else None

    async def list_accounts(self) -> list[AccountRecord]:
        """Every account, by key."""
        return await self._all(self._accounts, AccountRecord)
