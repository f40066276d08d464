"""The AES-GCM envelope and key ring of :mod:`phalanx_common.crypto`."""

from __future__ import annotations

import base64

import msgspec
import pytest

from phalanx_common import codec
from phalanx_common.crypto import (
    CryptoError,
    KeyRing,
    SealedToken,
    generate_key,
    key_ring_from_settings,
    open_token,
    seal_token,
    token_decoder,
)
from phalanx_common.records import TokenRecord

TOKEN = TokenRecord(
    login_id="apex_1",
    user_id=7,
    access_token="secret-token-abc",
    expiration_time="2026-01-01T00:00:00Z",
)


def test_seal_and_open_round_trip_without_the_token_in_clear() -> None:
    ring = KeyRing.parse(f"k1:{generate_key()}")
    sealed = seal_token(ring, TOKEN, source="oauth")
    assert "secret-token-abc" not in codec.encode(sealed).decode()
    assert "secret-token-abc" not in repr(sealed)
    assert sealed.sealed.startswith("v1.k1.")
    assert open_token(ring, sealed) == TOKEN
    # a fresh nonce every time
    assert seal_token(ring, TOKEN).sealed != seal_token(ring, TOKEN).sealed


def test_tampered_moved_or_foreign_values_do_not_open() -> None:
    ring = KeyRing.parse(f"k1:{generate_key()}")
    sealed = seal_token(ring, TOKEN)
    body = sealed.sealed.split(".", 2)[2]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    tampered = "v1.k1." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(CryptoError, match="does not authenticate"):
        open_token(ring, msgspec.structs.replace(sealed, sealed=tampered))
    with pytest.raises(CryptoError, match="does not authenticate"):  # stored under another login
        open_token(ring, msgspec.structs.replace(sealed, login_id="someone_else"))
    other = KeyRing.parse(f"k1:{generate_key()}")
    with pytest.raises(CryptoError, match="does not authenticate"):
        open_token(other, sealed)
    with pytest.raises(CryptoError, match="not in the key ring"):
        open_token(KeyRing.parse(f"k9:{generate_key()}"), sealed)
    with pytest.raises(CryptoError, match="not a sealed value"):
        open_token(ring, msgspec.structs.replace(sealed, sealed="plain-token"))


def test_rotation_new_key_seals_old_key_still_opens() -> None:
    old_key, new_key = generate_key(), generate_key()
    old = KeyRing.parse(f"k1:{old_key}")
    sealed = seal_token(old, TOKEN)
    rotated = KeyRing.parse(f"k2:{new_key}, k1:{old_key}")
    assert rotated.key_ids == ("k2", "k1")
    assert rotated.needs_rotation(sealed.sealed)
    assert open_token(rotated, sealed) == TOKEN
    resealed = seal_token(rotated, open_token(rotated, sealed))
    assert not rotated.needs_rotation(resealed.sealed)
    assert open_token(KeyRing.parse(f"k2:{new_key}"), resealed) == TOKEN


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("k1", "expected <key_id>:<base64 key>"),
        ("k1:not*base64", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "must be 32 bytes"),
        (f"bad id:{generate_key()}", "key id"),
        (f"k1:{generate_key()},k1:{generate_key()}", "listed twice"),
    ],
    # fixed ids: the generated keys differ per process (pytest-xdist workers must agree)
    ids=["empty", "no-key", "not-base64", "short", "bad-id", "twice"],
)
def test_malformed_key_rings_are_refused_without_echoing_keys(text: str, message: str) -> None:
    with pytest.raises(CryptoError, match=message) as info:
        KeyRing.parse(text)
    key_part = text.partition(":")[2]
    if len(key_part) > 8:
        assert key_part not in str(info.value)


def test_development_ring_is_stable_per_secret() -> None:
    a = key_ring_from_settings("", "admin-1")
    sealed = seal_token(a, TOKEN)
    assert open_token(key_ring_from_settings("", "admin-1"), sealed) == TOKEN
    with pytest.raises(CryptoError):
        open_token(key_ring_from_settings("", "admin-2"), sealed)
    assert repr(a) == "KeyRing(primary='dev', key_ids=('dev',))"  # never key material


def test_token_decoder_for_kv_mirrors() -> None:
    ring = KeyRing.parse(f"k1:{generate_key()}")
    decode = token_decoder(ring)
    assert decode(codec.encode(seal_token(ring, TOKEN))) == TOKEN
    with pytest.raises(msgspec.DecodeError):
        decode(codec.encode(TOKEN))  # a plain record is not a sealed one
    foreign = seal_token(KeyRing.parse(f"k1:{generate_key()}"), TOKEN)
    with pytest.raises(msgspec.DecodeError, match="apex_1"):
        decode(codec.encode(foreign))
    assert isinstance(msgspec.json.decode(codec.encode(foreign), type=SealedToken), SealedToken)
