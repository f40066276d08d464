"""Venue access tokens for simulator users, as auth would store them (for executor tests).

``await sim_tokens(sim, names)`` creates a simulator user per name (one account each), logs it
in over REST (``/auth/accesstokenrequest``) and returns ``{name: TokenRecord}``. The fixture of
that name hands this function to tests (it was written out in three test modules before).
``await log_in(sim, name, user_id)`` logs in a user the test created itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx

from phalanx_common.records import TokenRecord

__all__ = ["SimTokens", "log_in", "tokens_of_new_users"]


class _SimUser(Protocol):
    userId: int  # noqa: N815 - the simulator's (Tradovate's) field name


class _Sim(Protocol):
    @property
    def rest_url(self) -> str: ...

    def create_user(self, name: str, password: str, accounts: int = ...) -> _SimUser: ...


SimTokens = Callable[[_Sim, list[str]], Awaitable[dict[str, TokenRecord]]]


_PASSWORD = "pw"  # noqa: S105 - the simulator users these tests create


async def log_in(sim: _Sim, name: str, user_id: int) -> TokenRecord:
    """A fresh token of the simulator user ``name`` (password "pw"), as auth would store it."""
    async with httpx.AsyncClient() as http:
        response = await http.post(
            sim.rest_url + "/auth/accesstokenrequest", json={"name": name, "password": _PASSWORD}
        )
    body = response.json()
    return TokenRecord(
        login_id=name,
        user_id=user_id,
        access_token=body["accessToken"],
        expiration_time=body["expirationTime"],
    )


async def tokens_of_new_users(sim: _Sim, names: list[str]) -> dict[str, TokenRecord]:
    """One simulator user per name, logged in; their tokens by name."""
    return {
        name: await log_in(sim, name, sim.create_user(name, "pw", accounts=1).userId)
        for name in names
    }
