"""The login status table, the status's stored form, and the rolling windows of the throttle."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from phalanx_auth import login_status
from phalanx_auth.login_status import TRANSITIONS, InvalidLoginTransition, can_move, moved
from phalanx_auth.throttle import LoginThrottle, RollingWindow
from phalanx_common.records import LoginRecord, LoginStatus


def _documented_table() -> dict[str | None, set[str]]:
    """The from → to table as the module's docstring states it."""
    table: dict[str | None, set[str]] = {}
    for line in (login_status.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("from", "") or set(cells[0]) <= {"-"}:
            continue
        source = None if cells[0] == "(none)" else cells[0]
        table[source] = {part.split(" (")[0].strip() for part in cells[1].split(",")}
    return table


STATES: list[LoginStatus | None] = [None, *LoginStatus]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(STATES, list(LoginStatus))))
def test_the_table_allows_exactly_what_its_documentation_says(
    source: LoginStatus | None, target: LoginStatus
) -> None:
    documented = _documented_table()
    key = None if source is None else source.value
    assert can_move(source, target) is (target.value in documented[key])


def test_every_status_has_a_row_and_every_status_can_reconnect() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert all(LoginStatus.ACTIVE in allowed for allowed in TRANSITIONS.values())


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        (LoginStatus.ACTIVE, LoginStatus.REAUTH_REQUIRED, True),
        (LoginStatus.ACTIVE, LoginStatus.DISCONNECTED, True),
        (LoginStatus.REAUTH_REQUIRED, LoginStatus.DISCONNECTED, True),
        (LoginStatus.DISCONNECTED, LoginStatus.REAUTH_REQUIRED, False),
    ],
)
def test_moved_applies_the_status_reason_and_changes_or_refuses(
    source: LoginStatus, target: LoginStatus, allowed: bool
) -> None:
    login = LoginRecord(login_id="l", username="L", status=source, has_credentials=True)
    if not allowed:
        with pytest.raises(InvalidLoginTransition):
            moved(login, target, reason="why")
        return
    after = moved(login, target, reason="why", has_credentials=False)
    assert (after.status, after.reason, after.has_credentials) == (target, "why", False)
    assert (after.login_id, after.username) == (login.login_id, login.username)


@pytest.mark.parametrize("status", list(LoginStatus))
def test_the_status_is_stored_as_the_string_it_always_was(status: LoginStatus) -> None:
    record = LoginRecord(login_id="l", username="L", status=status)
    stored = msgspec.json.decode(msgspec.json.encode(record))
    assert stored["status"] == status.value
    # a record written before the enum (a plain string) reads back as the member
    old = msgspec.json.encode({"login_id": "l", "username": "L", "status": status.value})
    assert msgspec.json.decode(old, type=LoginRecord).status is status


def test_an_unknown_stored_status_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"login_id":"l","username":"L","status":"gone"}', type=LoginRecord)


@pytest.mark.parametrize(
    ("span_s", "events", "now", "expected"),
    [
        (3600.0, [], 0.0, 0),
        (3600.0, [0.0, 10.0, 20.0], 20.0, 3),
        (3600.0, [0.0, 10.0, 20.0], 3600.0, 2),  # an event exactly one span old has left
        (3600.0, [0.0, 10.0, 20.0], 3599.999, 3),
        (3600.0, [0.0, 10.0, 20.0], 3620.0, 0),
        (60.0, [100.0, 130.0, 159.0, 161.0], 190.0, 2),
    ],
)
def test_rolling_window_counts_events_younger_than_its_span(
    span_s: float, events: list[float], now: float, expected: int
) -> None:
    window = RollingWindow(span_s)
    for t in events:
        window.add(t)
    model = sum(1 for t in events if now - span_s < t <= now)
    assert window.count(now) == model == expected


@pytest.mark.parametrize(
    ("until", "now", "left"),
    [(0.0, 5.0, 0.0), (10.0, 5.0, 5.0), (10.0, 10.0, 0.0), (10.0, 12.0, 0.0)],
)
def test_a_pause_counts_down_and_clears(until: float, now: float, left: float) -> None:
    throttle = LoginThrottle()
    throttle.pause_until("a", until)
    assert throttle.paused_for("a", now) == left
    assert throttle.paused_for("b", now) == 0.0
    throttle.clear("a")
    assert throttle.paused_for("a", now) == 0.0


def test_each_login_has_its_own_windows() -> None:
    throttle = LoginThrottle()
    throttle.failures("a").add(1.0)
    throttle.renewals("a").add(1.0)
    throttle.renewals("a").add(2.0)
    assert (throttle.failures("a").count(2.0), throttle.renewals("a").count(2.0)) == (1, 2)
    assert (throttle.failures("b").count(2.0), throttle.renewals("b").count(2.0)) == (0, 0)
