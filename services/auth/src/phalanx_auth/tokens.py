"""Access tokens in memory: the cache that follows the sealed ``tokens`` bucket, expiry times,
and the ``TokenRenewed`` announcement every new token gets."""

from __future__ import annotations

from datetime import UTC, datetime

from phalanx_auth.store import AuthStore
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock
from phalanx_common.crypto import token_decoder
from phalanx_common.events import TokenRenewed
from phalanx_common.ids import new_event_id
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import TokenRecord

__all__ = [
    "DEFAULT_TOKEN_LIFETIME_S",
    "TokenCache",
    "announce_token",
    "expiration_or_default",
    "expiry_ns",
    "iso_from_ns",
]

DEFAULT_TOKEN_LIFETIME_S = 80 * 60.0
"""Assumed lifetime when the venue omits ``expirationTime`` (Tradovate documents 80 minutes)."""


def expiry_ns(expiration_time: str) -> int | None:
    """Parse Tradovate's ISO ``expirationTime`` into ns since the epoch (``None`` if unparsable)."""
    try:
        parsed = datetime.fromisoformat(expiration_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


def iso_from_ns(ns: int) -> str:
    """Format ns since the epoch as Tradovate does (``2026-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def expiration_or_default(expiration_time: str | None, now_ns: int) -> str:
    """The venue's ``expirationTime``, or ``now`` + the default lifetime when it sent none."""
    return expiration_time or iso_from_ns(now_ns + int(DEFAULT_TOKEN_LIFETIME_S * 1e9))


class TokenCache:
    """Every login's current token in memory: own writes plus a watch on the tokens bucket."""

    def __init__(self) -> None:
        self._tokens: dict[str, TokenRecord] = {}
        self._mirror: KvMirror[TokenRecord] | None = None

    @property
    def following(self) -> bool:
        """Whether the cache follows the bucket (opened and not closed)."""
        return self._mirror is not None

    async def open(self, store: AuthStore) -> None:
        """Load the bucket and follow it (idempotent)."""
        if self._mirror is not None:
            return
        mirror: KvMirror[TokenRecord] = KvMirror(
            store.tokens_kv, TokenRecord, "auth-tokens", decoder=token_decoder(store.ring)
        )
        mirror.on_change(self._on_change)
        await mirror.start()
        self._tokens.update(mirror.items())
        self._mirror = mirror

    async def close(self) -> None:
        """Stop following the bucket (idempotent); the cache keeps what it holds."""
        if self._mirror is not None:
            await self._mirror.stop()
            self._mirror = None

    def _on_change(self, login_id: str, record: TokenRecord | None) -> None:
        if record is None:
            self._tokens.pop(login_id, None)
        else:
            self._tokens[login_id] = record

    def get(self, login_id: str) -> TokenRecord | None:
        return self._tokens.get(login_id)

    def put(self, login_id: str, record: TokenRecord) -> None:
        self._tokens[login_id] = record

    def pop(self, login_id: str) -> None:
        self._tokens.pop(login_id, None)

    def snapshot(self) -> dict[str, TokenRecord]:
        """A copy of the cache (login id → token)."""
        return dict(self._tokens)

    def expiring_before(self, horizon_ns: int) -> list[str]:
        """Login ids whose cached token expires before ``horizon_ns`` (or cannot be read)."""
        return sorted(
            login_id
            for login_id, record in self._tokens.items()
            if (expiry_ns(record.expiration_time) or 0) < horizon_ns
        )


async def announce_token(
    bus: Bus, clock: Clock, login_id: str, user_id: int, expiration: str, ts_event: int
) -> None:
    """Publish ``TokenRenewed`` for a login's new token (deduplicated by its expiry)."""
    await bus.publish(
        subjects.auth_subject(login_id),
        TokenRenewed(
            event_id=new_event_id(),
            ts_event=ts_event,
            ts_init=clock.time_ns(),
            login_id=login_id,
            user_id=user_id,
            expiration_time=expiration,
        ),
        msg_id=f"token-{login_id}-{expiration}",
    )
