"""Unit tests of login ids and expiry parsing."""

from __future__ import annotations

import pytest

from phalanx_auth.connect import login_id_for
from phalanx_auth.tokens import expiry_ns


@pytest.mark.parametrize(
    ("username", "login_id"),
    [
        ("APEX_12345", "apex_12345"),
        ("Alice.Demo", "alice_demo"),
        ("  bob@example.com ", "bob_example_com"),
        ("x-y_z", "x-y_z"),
    ],
)
def test_login_id_is_a_safe_slug(username: str, login_id: str) -> None:
    assert login_id_for(username) == login_id


def test_blank_username_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        login_id_for("   ")


def test_expiry_parses_tradovate_iso_times() -> None:
    assert expiry_ns("2026-01-01T00:00:00Z") == 1_767_225_600_000_000_000
    assert expiry_ns("2026-01-01T00:00:01.500Z") == 1_767_225_601_500_000_000
    assert expiry_ns("2026-01-01T01:00:00+01:00") == 1_767_225_600_000_000_000
    assert expiry_ns("not a time") is None
    assert expiry_ns("2026-01-01T00:00:00") is None  # no zone: refuse to guess
