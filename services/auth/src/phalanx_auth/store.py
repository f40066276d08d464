"""The auth service's KV projections: logins, tokens, accounts, credentials and OAuth states.

Keys: ``logins/<login_id>``, ``tokens/<login_id>``, ``accounts/<account_id>``,
``credentials/<login_id>`` and ``oauth-states/<state digest>``. Only auth writes them.

Tokens are stored sealed (:class:`phalanx_common.crypto.SealedToken`, AES-GCM, ADR-0020) and
always written with compare-and-set on the KV revision, so two writers never overwrite each other
and a token is never replaced by one read before it. Credentials (opt-in, ADR-0021) are sealed
the same way. Reads through this class return plain :class:`TokenRecord` values; the raw bucket
never holds a token in clear.
"""

from __future__ import annotations

import contextlib
from typing import TypeVar

import msgspec
from nats.js.errors import APIError, KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from phalanx_common import codec
from phalanx_common.crypto import (
    KeyRing,
    SealedCredentials,
    SealedToken,
    StoredCredentials,
    credentials_aad,
    open_token,
    seal_token,
)
from phalanx_common.records import AccountRecord, LoginRecord, TokenRecord

__all__ = ["AuthStore", "OAuthHandoff", "OAuthState", "StoredToken"]

R = TypeVar("R", bound=msgspec.Struct)


class OAuthState(msgspec.Struct, frozen=True, kw_only=True):
    """A started consent: what the callback needs, kept until used (single use) or expired."""

    created_ns: int
    redirect_uri: str
    sealed_verifier: str = ""  # the PKCE code_verifier, sealed
    browser_sha256: str = ""  # sha256 of the binding cookie (empty: started over the API)
    login_hint: str = ""  # the login the operator meant to (re)connect, if any
    return_to: str = ""  # where the browser goes after the callback (set over the admin API)


class OAuthHandoff(msgspec.Struct, frozen=True, kw_only=True):
    """A consent started for a browser by another service (the console, ADR-0135).

    Kept under ``handoff-<sha256(ticket)>`` until the browser opens ``/oauth/begin`` once: that
    sets the binding cookie (``sealed_nonce``) on the callback's host and goes on to
    ``sealed_authorize_url``.
    """

    created_ns: int
    sealed_nonce: str
    sealed_authorize_url: str


class StoredToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as read from KV: the plain record, its revision and how it was obtained."""

    record: TokenRecord
    revision: int
    source: str
    key_id: str


class AuthStore:
    """Typed access to the auth buckets.

    Args:
        logins: the ``Buckets.LOGINS`` bucket.
        tokens: the ``Buckets.TOKENS`` bucket.
        accounts: the ``Buckets.ACCOUNTS`` bucket.
        ring: the key ring that seals tokens and credentials.
        credentials: the ``Buckets.CREDENTIALS`` bucket (optional: no credential storage).
        oauth_states: the ``Buckets.OAUTH_STATES`` bucket (optional: no OAuth).
    """

    def __init__(
        self,
        logins: KeyValue,
        tokens: KeyValue,
        accounts: KeyValue,
        ring: KeyRing,
        credentials: KeyValue | None = None,
        oauth_states: KeyValue | None = None,
    ) -> None:
        self._logins = logins
        self._tokens = tokens
        self._accounts = accounts
        self._credentials = credentials
        self._states = oauth_states
        self.ring = ring

    @property
    def tokens_kv(self) -> KeyValue:
        """The raw tokens bucket (for a watching mirror)."""
        return self._tokens

    @property
    def accounts_kv(self) -> KeyValue:
        """The raw accounts bucket (for a watching mirror)."""
        return self._accounts

    @staticmethod
    async def _get(kv: KeyValue, key: str, type_: type[R]) -> tuple[R, int] | None:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # also raised for deleted keys
            return None
        if entry.value is None or not entry.value:
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

    @staticmethod
    async def _delete(kv: KeyValue, key: str) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await kv.delete(key)

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

    async def get_stored_token(self, login_id: str) -> StoredToken | None:
        """The token (opened), its revision, source and key id; ``None`` when absent.

        Raises:
            CryptoError: the stored token cannot be opened with this key ring.
        """
        found = await self._get(self._tokens, login_id, SealedToken)
        if found is None:
            return None
        sealed, revision = found
        return StoredToken(
            record=open_token(self.ring, sealed),
            revision=revision,
            source=sealed.source,
            key_id=KeyRing.key_id_of(sealed.sealed),
        )

    async def get_token(self, login_id: str) -> tuple[TokenRecord, int] | None:
        """The token record and its KV revision, or ``None``."""
        stored = await self.get_stored_token(login_id)
        return (stored.record, stored.revision) if stored else None

    async def get_token_meta(self, login_id: str) -> SealedToken | None:
        """The stored (sealed) token without opening it: expiry and source for display."""
        found = await self._get(self._tokens, login_id, SealedToken)
        return found[0] if found else None

    async def put_token(self, record: TokenRecord, source: str = "api") -> int:
        """Write a fresh login's token: create, or replace whatever is current (CAS loop).

        Used only after a person connected the login (API access or OAuth consent): that token
        is the one to keep. Returns the new revision.
        """
        value = codec.encode(seal_token(self.ring, record, source))
        while True:
            try:
                entry = await self._tokens.get(record.login_id)
                revision: int | None = int(entry.revision or 0)
            except KeyNotFoundError:
                revision = None
            try:
                if revision is None:
                    return int(await self._tokens.create(record.login_id, value))
                return int(await self._tokens.update(record.login_id, value, revision))
            except KeyWrongLastSequenceError:
                continue  # someone wrote in between: read again

    async def update_token(
        self, record: TokenRecord, revision: int, source: str = "api"
    ) -> int | None:
        """Compare-and-set a token record; ``None`` when the revision is no longer current."""
        value = codec.encode(seal_token(self.ring, record, source))
        try:
            return int(await self._tokens.update(record.login_id, value, revision))
        except KeyWrongLastSequenceError:
            return None

    async def delete_token(self, login_id: str) -> None:
        """Forget a login's token (disconnect): executors drop its socket."""
        await self._delete(self._tokens, login_id)

    async def token_login_ids(self) -> list[str]:
        """Ids of the logins that have a token record."""
        out: list[str] = []
        for key in await self._keys(self._tokens):
            if await self._get(self._tokens, key, SealedToken) is not None:
                out.append(key)
        return out

    # -- credentials (opt-in) -----------------------------------------------------------------

    async def put_credentials(self, login_id: str, creds: StoredCredentials) -> None:
        """Seal and store API-access credentials.

        Raises:
            RuntimeError: no credentials bucket was given.
        """
        if self._credentials is None:
            raise RuntimeError("credential storage is not configured")
        sealed = self.ring.seal(codec.encode(creds), credentials_aad(login_id))
        record = SealedCredentials(login_id=login_id, sealed=sealed)
        await self._credentials.put(login_id, codec.encode(record))

    async def get_credentials(self, login_id: str) -> StoredCredentials | None:
        """The opened credentials of a login, or ``None``.

        Raises:
            CryptoError: stored credentials cannot be opened with this key ring.
        """
        if self._credentials is None:
            return None
        found = await self._get(self._credentials, login_id, SealedCredentials)
        if found is None:
            return None
        plain = self.ring.open(found[0].sealed, credentials_aad(login_id))
        return codec.decode(plain, StoredCredentials)

    async def delete_credentials(self, login_id: str) -> None:
        """Forget a login's credentials."""
        if self._credentials is not None:
            await self._delete(self._credentials, login_id)

    # -- OAuth states ---------------------------------------------------------------------------

    async def create_state(self, key: str, state: OAuthState) -> None:
        """Remember a started consent under ``key`` (a digest of the state value).

        Raises:
            RuntimeError: no OAuth state bucket was given.
        """
        if self._states is None:
            raise RuntimeError("OAuth is not configured")
        await self._states.create(key, codec.encode(state))

    async def take_state(self, key: str) -> OAuthState | None:
        """Consume a started consent exactly once: ``None`` if unknown, expired or already used.

        The delete is conditional on the revision that was read, so two callbacks racing with
        the same state cannot both win.
        """
        return await self._take_once(key, OAuthState)

    async def create_handoff(self, key: str, handoff: OAuthHandoff) -> None:
        """Remember a browser handoff under ``handoff-<key>`` (``key``: a digest of the ticket).

        Raises:
            RuntimeError: no OAuth state bucket was given.
        """
        if self._states is None:
            raise RuntimeError("OAuth is not configured")
        await self._states.create(f"handoff-{key}", codec.encode(handoff))

    async def take_handoff(self, key: str) -> OAuthHandoff | None:
        """Consume a browser handoff exactly once (as :meth:`take_state`)."""
        return await self._take_once(f"handoff-{key}", OAuthHandoff)

    async def _take_once(self, key: str, type_: type[R]) -> R | None:
        if self._states is None:
            return None
        found = await self._get(self._states, key, type_)
        if found is None:
            return None
        value, revision = found
        try:
            await self._states.delete(key, last=revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, APIError):
            return None  # another request consumed it first
        return value

    # -- accounts -----------------------------------------------------------------------------

    async def put_account(self, record: AccountRecord) -> None:
        """Write an account record (key: the account id)."""
        await self._accounts.put(str(record.account_id), codec.encode(record))

    async def get_account(self, account_id: int) -> AccountRecord | None:
        """The account record, or ``None``."""
        found = await self._get(self._accounts, str(account_id), AccountRecord)
        return found[0] if found else None

    async def delete_account(self, account_id: int) -> None:
        """Forget an account (closed at the venue, or its login disconnected)."""
        await self._delete(self._accounts, str(account_id))

    async def list_accounts(self) -> list[AccountRecord]:
        """Every account, by key."""
        return await self._all(self._accounts, AccountRecord)
