"""Password hashes, the user list and sessions (pure parts; the fake clock for expiry)."""

from __future__ import annotations

import pytest

from phalanx_console.passwords import hash_password, verify_password
from phalanx_console.sessions import SessionStore
from phalanx_console.throttle import SignInThrottle
from phalanx_console.users import Users
from phalanx_testing.clock import FakeClock


def test_a_hash_verifies_its_password_only_and_is_salted() -> None:
    first = hash_password("correct horse")
    second = hash_password("correct horse")
    assert first != second  # salted
    assert first.startswith("scrypt$")
    assert ":" not in first
    assert "," not in first
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct horsE", first)
    assert not verify_password("", first)


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "bcrypt$1$2$3$x$y", "scrypt$abc$8$1$c2FsdA$a2V5", "scrypt$2147483648$8$1$AA$AA"],
)
def test_a_malformed_hash_never_matches(encoded: str) -> None:
    assert not verify_password("anything", encoded)


def test_users_are_parsed_with_roles_and_authenticated() -> None:
    admin_hash, viewer_hash = hash_password("a-pw"), hash_password("v-pw")
    users = Users.parse(f"alice:admin:{admin_hash}, bob:viewer:{viewer_hash},")
    assert len(users) == 2
    alice = users.authenticate("alice", "a-pw")
    assert alice is not None
    assert alice.role == "admin"
    bob = users.authenticate("bob", "v-pw")
    assert bob is not None
    assert bob.role == "viewer"
    assert users.authenticate("alice", "v-pw") is None
    assert users.authenticate("carol", "a-pw") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice:root:scrypt$x", "role must be admin or viewer"),
        ("alice:admin", "need name:role:hash"),
        ("alice:admin:h1,alice:viewer:h2", "appears twice"),
    ],
)
def test_a_malformed_user_list_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Users.parse(text)


async def test_sessions_expire_close_and_carry_their_own_csrf_token() -> None:
    clock = FakeClock()
    store = SessionStore(clock, ttl_s=60)
    one = store.open("alice", "admin")
    two = store.open("alice", "admin")
    assert one.session_id != two.session_id
    assert one.csrf != two.csrf
    assert one.csrf_matches(one.csrf)
    assert not one.csrf_matches(two.csrf)
    assert not one.csrf_matches("")
    assert not one.csrf_matches(None)
    assert store.get(one.session_id) == one
    assert store.get("made-up") is None
    assert store.get(None) is None
    store.close(two.session_id)
    assert store.get(two.session_id) is None
    await clock.advance(59)
    assert store.get(one.session_id) == one
    await clock.advance(2)
    assert store.get(one.session_id) is None


async def test_an_address_with_too_many_failures_waits_until_they_leave_the_window() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(clock, max_failures=3, window_s=60)
    for _ in range(3):
        assert throttle.retry_after_s("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after_s("10.0.0.1") == pytest.approx(60)
    assert throttle.retry_after_s("10.0.0.2") == 0  # another address is not held back
    await clock.advance(59)
    assert throttle.retry_after_s("10.0.0.1") == pytest.approx(1)
    await clock.advance(1)
    assert throttle.retry_after_s("10.0.0.1") == 0
    throttle.failed("10.0.0.2")
    throttle.succeeded("10.0.0.2")
    for _ in range(2):
        throttle.failed("10.0.0.2")
    assert throttle.retry_after_s("10.0.0.2") == 0  # a success forgot the earlier failure
