"""Seed file: users, accounts and prices created at start-up and after ``/admin/reset``.

Format (JSON)::

    {"users": [{"name": "alice", "password": "pw", "accounts": 3},
               {"name": "bob", "password": "pw", "accounts": ["APEX1234501", "APEX1234502"]}],
     "prices": {"MNQZ6": 21000.25}}
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from phalanx_sim.venue import CreatedUser, Venue

__all__ = ["Seed", "SeedUser", "apply_seed", "load_seed"]


class SeedUser(msgspec.Struct, kw_only=True):
    """A user to create: account count or explicit account names."""

    name: str
    password: str
    accounts: int | list[str] = 1


class Seed(msgspec.Struct, kw_only=True):
    """Contents of a seed file."""

    users: list[SeedUser] = msgspec.field(default_factory=list)
    prices: dict[str, float] = msgspec.field(default_factory=dict)


def load_seed(path: str | Path) -> Seed:
    """Read a seed file.

    Raises:
        OSError: if the file cannot be read.
        msgspec.ValidationError: if it is not a valid seed.
    """
    return msgspec.json.decode(Path(path).read_bytes(), type=Seed)


def apply_seed(venue: Venue, seed: Seed) -> list[CreatedUser]:
    """Create the seed's users and set its prices; returns the users created."""
    created = [venue.create_user(u.name, u.password, u.accounts) for u in seed.users]
    for symbol, price in seed.prices.items():
        venue.set_price(symbol, price)
    return created
