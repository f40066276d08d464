"""What the console sends to ingest for each form (pure functions)."""

from __future__ import annotations

import pytest

from phalanx_console.signal_pages import sse_event
from phalanx_console.strategy_pages import (
    FormError,
    changed_settings,
    strategy_body,
    subscription_body,
    webhook_secret,
)


def test_the_strategy_form_becomes_ingests_body() -> None:
    form = {
        "name": ["  trend  "],
        "allowed_tickers": ["mnq1!, es1!  NQ1!"],
        "allowed_ips": ["10.0.0.0/8 192.0.2.1"],
        "tradingview_only": ["on"],
        "max_quantity": ["5"],
        "repeat_window_s": ["2.5"],
        "max_signal_age_s": [""],
    }
    body = strategy_body(form)
    assert body["name"] == "trend"
    assert body["allowed_tickers"] == ["MNQ1!", "ES1!", "NQ1!"]
    assert body["allowed_ips"] == ["10.0.0.0/8", "192.0.2.1"]
    assert body["tradingview_only"] is True
    assert body["require_signature"] is False  # an unticked box is off
    assert body["max_quantity"] == 5
    assert body["repeat_window_s"] == 2.5
    assert body["max_signal_age_s"] == 0.0


@pytest.mark.parametrize(
    ("form", "message"),
    [({"name": [""]}, "needs a name"), ({"name": ["x"], "max_quantity": ["lots"]}, "max quantity")],
)
def test_a_bad_strategy_form_is_refused(form: dict[str, list[str]], message: str) -> None:
    with pytest.raises(FormError, match=message):
        strategy_body(form)


def test_bulk_subscription_takes_all_or_the_ticked_accounts_with_one_sizing() -> None:
    every = subscription_body(
        {"all": ["on"], "multiplier": ["2"], "enabled": ["on"], "allow_reversal": ["on"]},
        [3, 1, 2],
    )
    assert every == {
        "account_ids": [1, 2, 3],
        "multiplier": "2",
        "max_quantity": None,
        "fixed_quantity": None,
        "enabled": True,
        "allow_add": False,
        "allow_reversal": True,
    }
    ticked = subscription_body(
        {"account": ["7", "9"], "account_ids": ["11, 12"], "max_quantity": ["3"]}, [7, 9]
    )
    assert ticked["account_ids"] == [7, 9, 11, 12]
    assert ticked["max_quantity"] == 3
    assert ticked["enabled"] is False
    with pytest.raises(FormError, match="at least one"):
        subscription_body({"multiplier": ["1"]}, [1])
    with pytest.raises(FormError, match="not an account id"):
        subscription_body({"account_ids": ["abc"]}, [1])
    with pytest.raises(FormError, match="multiplier"):
        subscription_body({"all": ["on"], "multiplier": ["x"]}, [1])


def test_only_the_secret_of_this_strategys_webhook_url_is_taken() -> None:
    assert webhook_secret("http://h:8000/webhooks/s1/abc", "s1") == "abc"
    assert webhook_secret(" https://public.example/webhooks/s1/abc?x=1 ", "s1") == "abc"
    assert webhook_secret("http://h:8000/webhooks/s2/abc", "s1") == ""
    assert webhook_secret("http://h:8000/webhooks/s1/{secret}", "s1") == ""
    assert webhook_secret("http://h:8000/webhooks/s1/", "s1") == ""
    assert webhook_secret("http://h:8000/webhooks/s1/abc/more", "s1") == ""


def test_a_server_sent_event_carries_every_line() -> None:
    assert sse_event("signals", "<p>\nhi\n</p>") == (
        "event: signals\ndata: <p>\ndata: hi\ndata: </p>\n\n"
    )
    assert sse_event("x", "") == "event: x\ndata: \n\n"


def test_only_changed_settings_are_sent_so_defaults_stay_defaults() -> None:
    shown = {"name": "t", "max_quantity": 100, "repeat_window_s": 5.0, "allowed_tickers": []}
    submitted = {"name": "t", "max_quantity": 10, "repeat_window_s": 5.0, "allowed_tickers": []}
    assert changed_settings(submitted, shown) == {"max_quantity": 10}
    assert changed_settings(shown, shown) == {}
