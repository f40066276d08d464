"""Seed a running Phalanx with simulated logins, accounts and a subscribed strategy.

Everything goes through the services' public HTTP APIs: the simulator's admin API creates
users and accounts at the (simulated) venue, auth links each login, ingest creates a strategy
and subscribes the accounts. ``--demo`` seeds 25 accounts (5 logins x 5) and prints the webhook
URL and a curl line that trades them all.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass

import httpx

from phalanx_common.contracts import ContractBook

__all__ = ["Endpoints", "SeededStrategy", "seed"]


@dataclass(frozen=True)
class Endpoints:
    """Where the services listen, and the admin credential."""

    sim: str = "http://127.0.0.1:8900"
    auth: str = "http://127.0.0.1:8100"
    ingest: str = "http://127.0.0.1:8000"
    ledger: str = "http://127.0.0.1:8200"
    admin_token: str = "dev-admin-token"  # noqa: S105 - the documented make-run credential

    @classmethod
    def from_env(cls) -> Endpoints:
        """Read ``PHALANX_*`` variables (the same ones the services read)."""
        env = os.environ

        def local(port_var: str, default: int) -> str:
            return f"http://127.0.0.1:{env.get(port_var, default)}"

        return cls(
            sim=local("PHALANX_SIM_PORT", 8900),
            auth=local("PHALANX_AUTH_PORT", 8100),
            ingest=local("PHALANX_INGEST_PORT", 8000),
            ledger=local("PHALANX_LEDGER_PORT", 8200),
            admin_token=env.get("PHALANX_ADMIN_TOKEN", "dev-admin-token"),
        )


@dataclass(frozen=True)
class SeededStrategy:
    """What was seeded."""

    strategy_id: str
    webhook_url: str
    account_ids: list[int]
    logins: list[str]


def _check(resp: httpx.Response, what: str) -> dict[str, object]:
    if resp.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {resp.status_code}: {resp.text}")
    body: dict[str, object] = resp.json()
    return body


async def seed(
    endpoints: Endpoints,
    logins: int,
    accounts_per_login: int,
    strategy_name: str = "demo",
    prefix: str = "demo",
) -> SeededStrategy:
    """Create ``logins`` venue users with ``accounts_per_login`` accounts each, link them, and
    subscribe all their accounts to a new strategy."""
    admin = {"Authorization": f"Bearer {endpoints.admin_token}"}
    # Idle connections are dropped after 1 s, well before the services' 5 s keep-alive: a
    # connection reused just as the server closes it fails with ReadError (seen while seeding
    # 2,000 logins on a loaded machine).
    limits = httpx.Limits(max_connections=50, keepalive_expiry=1.0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        sem = asyncio.Semaphore(20)

        async def make_login(n: int) -> tuple[str, list[int]]:
            name = f"{prefix}{n:04d}_{int(time.time())}"
            password = f"pw-{name}"
            async with sem:
                created = _check(
                    await http.post(
                        f"{endpoints.sim}/admin/users",
                        json={"name": name, "password": password, "accounts": accounts_per_login},
                    ),
                    f"simulator: create user {name}",
                )
                linked = _check(
                    await http.post(
                        f"{endpoints.auth}/admin/logins",
                        json={"username": name, "password": password},
                        headers=admin,
                    ),
                    f"auth: link login {name}",
                )
            accounts = created["accounts"]
            assert isinstance(accounts, list)
            return str(linked.get("login_id", name)), [int(a["id"]) for a in accounts]

        made = await asyncio.gather(*(make_login(n) for n in range(logins)))
        account_ids = [a for _, ids in made for a in ids]
        strategy = _check(
            await http.post(
                f"{endpoints.ingest}/admin/strategies", json={"name": strategy_name}, headers=admin
            ),
            "ingest: create strategy",
        )
        strategy_id = str(strategy["strategy_id"])
        await _subscribe_when_linked(http, endpoints, strategy_id, account_ids, admin)
        return SeededStrategy(
            strategy_id=strategy_id,
            webhook_url=str(strategy["webhook_url"]),
            account_ids=account_ids,
            logins=[login for login, _ in made],
        )


async def _subscribe_when_linked(
    http: httpx.AsyncClient,
    endpoints: Endpoints,
    strategy_id: str,
    account_ids: list[int],
    admin: dict[str, str],
) -> None:
    # Accounts reach ingest through the accounts bucket; retry briefly while that propagates.
    deadline = time.monotonic() + 30
    while True:
        resp = await http.post(
            f"{endpoints.ingest}/admin/strategies/{strategy_id}/subscriptions:bulk",
            json={"account_ids": account_ids},
            headers=admin,
        )
        if resp.status_code < 300 or time.monotonic() > deadline or resp.status_code != 404:
            _check(resp, "ingest: subscribe accounts")
            return
        await asyncio.sleep(0.2)


async def register_oauth_client(endpoints: Endpoints) -> None:
    """Register auth's OAuth client at the simulator, when ``PHALANX_OAUTH_*`` is configured."""
    client_id = os.environ.get("PHALANX_OAUTH_CLIENT_ID", "")
    redirect = os.environ.get("PHALANX_OAUTH_REDIRECT_URI", "")
    if not client_id or not redirect:
        return
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{endpoints.sim}/admin/oauth/clients",
            json={
                "client_id": client_id,
                "client_secret": os.environ.get("PHALANX_OAUTH_CLIENT_SECRET", ""),
                "redirect_uris": [redirect],
            },
        )
        if resp.status_code not in (200, 201, 409):
            _check(resp, "simulator: register the OAuth client")


def front_month(root: str = "MNQ") -> str:
    """Tradovate's symbol of the contract ``ROOT1!`` names today (UTC), as ingest resolves it."""
    today = dt.datetime.now(dt.UTC).date()
    symbol, _ = ContractBook.load().resolve(f"{root}1!", today)
    return symbol


def demo_payload() -> dict[str, object]:
    """A TradersPost-style entry with an absolute bracket around a simulated MNQ price."""
    return {
        "ticker": "MNQ1!",
        "action": "buy",
        "quantity": 1,
        "price": 21000,
        "takeProfit": {"limitPrice": 21040},
        "stopLoss": {"type": "stop", "stopPrice": 20980},
    }


def main() -> None:
    """``phalanx-seed [--demo] [--logins N --accounts M] [--stay]``."""
    parser = argparse.ArgumentParser(prog="phalanx-seed", description=__doc__)
    parser.add_argument("--demo", action="store_true", help="25 accounts: 5 logins x 5 accounts")
    parser.add_argument("--logins", type=int, default=5)
    parser.add_argument("--accounts", type=int, default=5, help="accounts per login")
    parser.add_argument("--stay", action="store_true", help="keep running (for Procfiles)")
    args = parser.parse_args()
    endpoints = Endpoints.from_env()
    asyncio.run(register_oauth_client(endpoints))
    seeded = asyncio.run(seed(endpoints, args.logins, args.accounts))
    body = json.dumps(demo_payload())
    curl = (
        f"curl -sS -X POST {shlex.quote(seeded.webhook_url)} "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    exit_curl = (
        f"curl -sS -X POST {shlex.quote(seeded.webhook_url)} "
        f"-H 'Content-Type: application/json' -d "
        + shlex.quote(json.dumps({"ticker": "MNQ1!", "action": "exit"}))
    )
    print(
        "\n".join(
            [
                "",
                "=" * 78,
                f"Phalanx is up: strategy {seeded.strategy_id} with {len(seeded.account_ids)} "
                f"simulated accounts under {len(seeded.logins)} logins.",
                f"Webhook URL: {seeded.webhook_url}",
                f"Console:     http://127.0.0.1:{os.environ.get('PHALANX_CONSOLE_PORT', 8400)}/"
                "  (user admin, password dev-console-admin; read-only: viewer, "
                "dev-console-viewer)",
                "Trade them all:",
                f"  {curl}",
                "Exit them all (the same body again, more than 5 s later, trades again):",
                f"  {exit_curl}",
                f"Positions:   curl -sS {endpoints.ledger}/positions",
                f"Accounts:    {endpoints.auth}/ui  (user admin, password: the admin token)",
                "Kill switch: curl -sS -X POST http://127.0.0.1:8300/admin/kill-switch "
                f"-H 'Authorization: Bearer {endpoints.admin_token}' "
                "-H 'Content-Type: application/json' -d '{\"reason\": \"manual\"}'",
                f"Venue view:  curl -sS {endpoints.sim}/admin/stats",
                "Ctrl-C stops everything.",
                "=" * 78,
                "",
            ]
        ),
        flush=True,
    )
    if args.stay:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.exit(0)


if __name__ == "__main__":
    main()
