"""What the templates render from the services' answers (the renderer alone)."""

from __future__ import annotations

from typing import Any, Literal

from phalanx_console.ledger_views import account_checks, pnl_table
from phalanx_console.render import Renderer
from phalanx_console.sessions import Session


def _signal(status: str) -> dict[str, Any]:
    return {
        "signal_id": "s1",
        "strategy_id": "st1",
        "status": status,
        "planner_rejected": "",
        "received_ns": 1_767_225_600_000_000_000,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "replay_of": "",
        "timings_ms": {
            "stored": 1.0,
            "planned": 2.0,
            "first_sent": None,
            "last_acknowledged": None,
        },
        "accounts": [
            {
                "account_id": 7,
                "outcome": "rejected",
                "reason": "<script>alert(1)</script>",
                "text": "",
                "order_id": None,
                "sent_ms": None,
                "acknowledged_ms": None,
            }
        ],
    }


def test_a_signal_still_executing_asks_again_and_a_finished_one_does_not() -> None:
    renderer = Renderer("https://grafana.example/explore?traceId={trace_id}")
    running = renderer.fragment("_signal_body.html", signal=_signal("executing"))
    assert 'hx-get="/signals/s1/body"' in running
    assert 'hx-trigger="every 1s"' in running
    for status in ("done", "rejected"):
        finished = renderer.fragment("_signal_body.html", signal=_signal(status))
        assert "hx-get" not in finished
        assert (
            "https://grafana.example/explore?traceId=0af7651916cd43dd8448eb211c80319c" in finished
        )


def test_values_from_the_services_are_escaped() -> None:
    html = Renderer().fragment("_signal_body.html", signal=_signal("done"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<a " not in html.split("Trace")[1].split("</dd>")[0]  # no trace URL: no link


def _positions_values() -> dict[str, Any]:
    checks = account_checks(
        [
            {
                "account_id": 7,
                "status": "drift",
                "checked_ns": 1_767_225_600_000_000_000,
                "explained": True,
                "fetched_fills": 1,
                "contracts": [
                    {
                        "contract_id": 3,
                        "symbol": "MNQZ6",
                        "ledger_net_pos": 2,
                        "broker_net_pos": 1,
                        "fetched_net_pos": -1,
                        "ledger_avg_price": "21000",
                        "broker_net_price": "21000",
                    }
                ],
            },
            {"account_id": 8, "status": "unknown", "reason": "no access token for <login>"},
            {"account_id": 9, "status": "ok", "checked_ns": 1},
        ],
        [7, 8, 9, 10],
    )
    position = {
        "account_id": 7,
        "symbol": "MNQZ6",
        "net_pos": 2,
        "avg_price": "21000",
        "realized_pnl": "0",
        "realized_pnl_money": "0",
        "currency": "USD",
        "fill_count": 1,
        "updated_ns": 1,
    }
    mark = {"mark_price": "21010", "unrealized_pnl_money": "40", "currency": "USD"}
    return {
        "positions": [position],
        "open_positions": [position],
        "marks": {(7, "MNQZ6"): mark},
        "checks": checks,
        "check_of": {c.account_id: c for c in checks},
        "by_strategy": pnl_table(
            [
                {
                    "key": "trend",
                    "currency": "USD",
                    "realized_pnl_money": "40",
                    "fees_money": "3",
                    "net_pnl_money": "37",
                    "fills": 4,
                }
            ],
            [{"key": "trend", "currency": "USD", "unrealized_pnl_money": "40", "positions": 1}],
        ),
        "by_account": [],
        "strategy_names": {"trend": "Trend <follower>"},
    }


def test_the_positions_table_flags_drift_with_both_sides_and_unknown_apart_from_ok() -> None:
    html = Renderer().fragment("positions_table.html", **_positions_values())
    assert 'data-drift="1" data-unknown="1" data-unchecked="1" data-ok="1"' in html
    assert 'id="check-7" data-state="drift"' in html
    sides = html.split('id="sides-7-MNQZ6"')[1].split("</tr>")[0]
    assert 'data-ledger="2" data-broker="1"' in sides
    assert "explained by 1 fill(s)" in sides
    assert 'id="check-8" data-state="unknown"' in html
    assert "no access token for &lt;login&gt;" in html  # the ledger's reason, escaped
    assert 'id="check-10" data-state="unchecked"' in html
    assert 'id="check-9" data-state="ok"' in html
    row = html.split('id="position-7-MNQZ6"')[1].split("</tr>")[0]
    assert 'data-check="drift"' in row
    assert "drift" in row.split(">")[0]  # the row's class flags it
    assert "40.00 USD" in row  # unrealized at the mark
    trend = html.split('id="pnl-strategy-trend-USD"')[1].split("</tr>")[0]
    assert 'data-net="37"' in trend
    assert 'data-total="77"' in trend  # net 37 + unrealized 40
    assert "Trend &lt;follower&gt;" in trend  # ingest's name of the strategy, escaped


def test_only_an_admin_sees_the_reconcile_button() -> None:
    def page(role: Literal["admin", "viewer"]) -> str:
        session = Session("sid", "someone", role, "csrf-token", 0, 1)
        response = Renderer().page("positions.html", session=session, **_positions_values())
        return bytes(response.body).decode()

    admin = page("admin")
    assert 'id="reconcile-form"' in admin
    assert 'name="confirm"' in admin.split('id="reconcile-form"')[1].split("</form>")[0]
    assert 'value="csrf-token"' in admin.split('id="reconcile-form"')[1]
    viewer = page("viewer")
    assert 'id="reconcile-form"' not in viewer
    assert "/positions/reconcile" not in viewer
    assert 'id="check-7" data-state="drift"' in viewer  # the viewer still sees the drift


def _login(login_id: str, status: str, expires_in_s: float | None) -> dict[str, Any]:
    return {
        "login_id": login_id,
        "username": login_id.upper(),
        "status": status,
        "reason": "renewal refused" if status == "reauth_required" else "",
        "method": "oauth",
        "token_expires_in_s": expires_in_s,
        "accounts": [{"account_id": 11, "account_spec": "DEMO11"}],
    }


def test_reconnect_is_offered_where_a_login_needs_it_with_each_token_expiry() -> None:
    logins = [
        _login("fine", "active", 3 * 3600 + 5 * 60),
        _login("stale", "reauth_required", -5),
        _login("gone", "disconnected", None),
    ]

    def page(role: Literal["admin", "viewer"]) -> str:
        session = Session("sid", "someone", role, "csrf-token", 0, 1)
        response = Renderer().page(
            "logins.html", session=session, logins=logins, budgets={}, account_page="x"
        )
        return bytes(response.body).decode()

    admin = page("admin")
    assert 'id="connect-new"' in admin
    assert 'id="reconnect-stale"' in admin
    assert 'id="reconnect-gone"' in admin
    assert 'id="reconnect-fine"' not in admin  # active: nothing to reconnect
    stale = admin.split('id="login-stale"')[1].split("</tr>")[0]
    assert 'name="login_id" value="stale"' in stale
    assert 'value="csrf-token"' in stale
    assert ">expired<" in stale
    fine = admin.split('id="login-fine"')[1].split("</tr>")[0]
    assert ">3 h 5 min<" in fine
    assert ">no token<" in admin.split('id="login-gone"')[1].split("</tr>")[0]
    viewer = page("viewer")
    assert "/logins/connect" not in viewer
    assert ">3 h 5 min<" in viewer  # the viewer sees the expiry too
