"""Secrets at rest: an AES-256-GCM envelope with a key ring, so keys can rotate (ADR-0020).

Every sealed value is the text ``v1.<key_id>.<base64url(nonce ‖ ciphertext ‖ tag)>``: a fresh
96-bit random nonce per seal, the key id in clear so the right key is found, and associated data
(``aad``) that binds the ciphertext to where it is stored (``token|<login_id>``) so a sealed value
cannot be moved to another key and still open.

Keys come from ``PHALANX_TOKEN_KEYS`` (setting ``token_keys``): a comma-separated list of
``<key_id>:<base64 of 32 bytes>``; the **first** key seals, every listed key opens. Rotation:
put the new key first and keep the old one listed; auth re-seals what it reads under the old key
(:meth:`KeyRing.needs_rotation`); once nothing carries the old id any more, drop it. Generate a
key with ``python -m phalanx_common.crypto``.

Without ``token_keys`` a development key is derived from ``admin_token`` (key id ``dev``) and a
warning is logged: fine for ``make run``, never for production.

The token bucket holds :class:`SealedToken` values; readers turn them back into
:class:`phalanx_common.records.TokenRecord` with :func:`open_token` (or
:func:`token_decoder` for a :class:`phalanx_common.kvmirror.KvMirror`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phalanx_common.records import TokenRecord

__all__ = [
    "CryptoError",
    "KeyRing",
    "SealedCredentials",
    "SealedToken",
    "StoredCredentials",
    "credentials_aad",
    "generate_key",
    "key_ring_from_settings",
    "open_token",
    "seal_token",
    "token_aad",
    "token_decoder",
]

log = logging.getLogger(__name__)

_VERSION = "v1"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
DEV_KEY_ID = "dev"


class CryptoError(Exception):
    """A key ring is malformed, or a sealed value cannot be opened (wrong key, tampered, moved).

    Messages name key ids and formats, never key material or plaintext.
    """


def generate_key() -> str:
    """A new random 256-bit key, base64 (what ``PHALANX_TOKEN_KEYS`` lists after ``<id>:``)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class KeyRing:
    """Named AES-256-GCM keys; the primary seals, any of them opens.

    Args:
        keys: key id → 32 raw key bytes.
        primary: the id of the key that seals.

    Raises:
        CryptoError: a key id is malformed, a key is not 32 bytes, or the primary is unknown.
    """

    def __init__(self, keys: Mapping[str, bytes], primary: str) -> None:
        if primary not in keys:
            raise CryptoError(f"primary key id {primary!r} is not in the key ring")
        self._aead: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise CryptoError(f"key id {key_id!r}: use 1-32 of [A-Za-z0-9_-]")
            if len(key) != 32:
                raise CryptoError(f"key {key_id!r}: must be 32 bytes (AES-256), got {len(key)}")
            self._aead[key_id] = AESGCM(key)
        self.primary = primary

    def __repr__(self) -> str:
        return f"KeyRing(primary={self.primary!r}, key_ids={self.key_ids!r})"

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id, the primary first."""
        return (self.primary, *(k for k in self._aead if k != self.primary))

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Parse ``"<id>:<base64>,<id>:<base64>"`` (first = primary).

        Raises:
            CryptoError: naming the malformed entry by position and id, never its key.
        """
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for position, raw in enumerate(p.strip() for p in text.split(",")):
            if not raw:
                continue
            key_id, sep, b64 = raw.partition(":")
            key_id = key_id.strip()
            if not sep:
                raise CryptoError(f"token key #{position + 1}: expected <key_id>:<base64 key>")
            try:
                key = base64.b64decode(b64.strip(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise CryptoError(f"token key {key_id!r}: not valid base64") from exc
            if key_id in keys:
                raise CryptoError(f"token key {key_id!r} is listed twice")
            keys[key_id] = key
            order.append(key_id)
        if not order:
            raise CryptoError("no token key given (PHALANX_TOKEN_KEYS is empty)")
        return cls(keys, order[0])

    @classmethod
    def development(cls, secret: str) -> KeyRing:
        """A ring with one key derived from ``secret`` (key id ``dev``): development only."""
        key = hashlib.sha256(b"phalanx-dev-token-key|" + secret.encode()).digest()
        return cls({DEV_KEY_ID: key}, DEV_KEY_ID)

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        """Encrypt under the primary key: ``v1.<key_id>.<base64url(nonce‖ct‖tag)>``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self.primary].encrypt(nonce, plaintext, aad)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self.primary}.{body}"

    @staticmethod
    def key_id_of(sealed: str) -> str:
        """The key id a sealed value names (no decryption).

        Raises:
            CryptoError: not a ``v1`` envelope.
        """
        version, _, rest = sealed.partition(".")
        key_id, sep, _ = rest.partition(".")
        if version != _VERSION or not sep or not key_id:
            raise CryptoError("not a sealed value (expected v1.<key_id>.<data>)")
        return key_id

    def open(self, sealed: str, aad: bytes) -> bytes:
        """Decrypt and authenticate.

        Raises:
            CryptoError: unknown key id, malformed envelope, or authentication failed (wrong key,
                tampered ciphertext, or different ``aad``).
        """
        key_id = self.key_id_of(sealed)
        aead = self._aead.get(key_id)
        if aead is None:
            raise CryptoError(f"sealed with key id {key_id!r}, which is not in the key ring")
        body = sealed.split(".", 2)[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("sealed value is not valid base64url") from exc
        if len(raw) < _NONCE_BYTES + 16:
            raise CryptoError("sealed value is too short")
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise CryptoError(
                f"sealed value does not authenticate under key {key_id!r} "
                "(wrong key, tampered, or stored under another name)"
            ) from exc

    def needs_rotation(self, sealed: str) -> bool:
        """Whether ``sealed`` was made with a key other than the primary."""
        try:
            return self.key_id_of(sealed) != self.primary
        except CryptoError:
            return True


def key_ring_from_settings(token_keys: str, admin_token: str) -> KeyRing:
    """The ring from ``PHALANX_TOKEN_KEYS``, else the development ring (with a warning).

    Raises:
        CryptoError: ``token_keys`` is set but malformed.
    """
    if token_keys.strip():
        return KeyRing.parse(token_keys)
    log.warning(
        "PHALANX_TOKEN_KEYS is not set: tokens are sealed with a development key derived from "
        "the admin token; set PHALANX_TOKEN_KEYS in production (see phalanx_common.crypto)"
    )
    return KeyRing.development(admin_token)


# -- tokens -----------------------------------------------------------------------------------


class SealedToken(msgspec.Struct, frozen=True, kw_only=True):
    """What the tokens bucket stores: a :class:`TokenRecord` with the token sealed.

    ``login_id``, ``user_id`` and ``expiration_time`` stay in clear (the renewal schedule and the
    account page need them without a key); ``sealed`` holds the access token.
    """

    login_id: str
    user_id: int
    expiration_time: str
    sealed: str
    source: str = "api"  # "oauth" | "api": how the session was first obtained

    def __repr__(self) -> str:
        return f"SealedToken(login_id={self.login_id!r}, expiration_time={self.expiration_time!r})"


def token_aad(login_id: str) -> bytes:
    """Associated data binding a sealed token to its login."""
    return f"phalanx|token|{login_id}".encode()


def seal_token(ring: KeyRing, record: TokenRecord, source: str = "api") -> SealedToken:
    """Seal a token record for the tokens bucket."""
    return SealedToken(
        login_id=record.login_id,
        user_id=record.user_id,
        expiration_time=record.expiration_time,
        sealed=ring.seal(record.access_token.encode(), token_aad(record.login_id)),
        source=source,
    )


def open_token(ring: KeyRing, sealed: SealedToken) -> TokenRecord:
    """The plain :class:`TokenRecord` of a sealed one.

    Raises:
        CryptoError: if it cannot be opened with this ring.
    """
    token = ring.open(sealed.sealed, token_aad(sealed.login_id)).decode()
    return TokenRecord(
        login_id=sealed.login_id,
        user_id=sealed.user_id,
        access_token=token,
        expiration_time=sealed.expiration_time,
    )


_sealed_decoder = msgspec.json.Decoder(SealedToken)


def token_decoder(ring: KeyRing) -> Callable[[bytes], TokenRecord]:
    """A decoder for :class:`~phalanx_common.kvmirror.KvMirror` over the tokens bucket.

    ``KvMirror(kv, TokenRecord, decoder=token_decoder(ring))`` mirrors plain records while the
    bucket stores :class:`SealedToken`. It raises ``msgspec.DecodeError`` for a value it cannot
    decode or open, which the mirror logs (by key) and skips.
    """

    def decode(data: bytes) -> TokenRecord:
        sealed = _sealed_decoder.decode(data)
        try:
            return open_token(ring, sealed)
        except CryptoError as exc:
            raise msgspec.DecodeError(f"token of {sealed.login_id!r}: {exc}") from exc

    return decode


# -- API-access credentials (opt-in) --------------------------------------------------------------


class StoredCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """Username/password API access kept (sealed) for the renewal fallback; never logged."""

    username: str
    password: str
    app_id: str | None = None
    cid: str | None = None
    sec: str | None = None
    device_id: str | None = None

    def __repr__(self) -> str:
        return f"StoredCredentials(username={self.username!r})"


class SealedCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What the credentials bucket stores: :class:`StoredCredentials` as JSON, sealed."""

    login_id: str
    sealed: str

    def __repr__(self) -> str:
        return f"SealedCredentials(login_id={self.login_id!r})"


def credentials_aad(login_id: str) -> bytes:
    """Associated data binding sealed credentials to their login."""
    return f"phalanx|credentials|{login_id}".encode()


def main() -> int:
    """``python -m phalanx_common.crypto [key_id]``: print a new ``PHALANX_TOKEN_KEYS`` entry."""
    key_id = sys.argv[1] if len(sys.argv) > 1 else "k1"
    if not _KEY_ID.match(key_id):
        print(f"key id {key_id!r}: use 1-32 of [A-Za-z0-9_-]", file=sys.stderr)
        return 2
    print(f"{key_id}:{generate_key()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
