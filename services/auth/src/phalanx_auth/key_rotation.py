"""Re-sealing under the primary key of ``PHALANX_TOKEN_KEYS`` (ADR-0020)."""

from __future__ import annotations

from phalanx_auth.locks import LoginLocks
from phalanx_auth.store import AuthStore
from phalanx_common.crypto import SealedToken

__all__ = ["rotate_keys"]


async def rotate_keys(store: AuthStore, locks: LoginLocks) -> int:
    """Re-seal every token sealed with a non-primary key (CAS) and every stored credential;
    returns how many tokens were re-sealed."""
    rotated = 0
    for login_id in await store.token_login_ids():
        meta: SealedToken | None = await store.get_token_meta(login_id)
        if meta is None or not store.ring.needs_rotation(meta.sealed):
            continue
        async with locks(login_id):
            found = await store.get_stored_token(login_id)
            if found is None:
                continue
            if await store.update_token(found.record, found.revision, source=found.source):
                rotated += 1
    for login in await store.list_logins():
        if login.has_credentials:
            creds = await store.get_credentials(login.login_id)
            if creds is not None:
                await store.put_credentials(login.login_id, creds)
    return rotated
