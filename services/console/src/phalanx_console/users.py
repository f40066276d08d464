"""Console users and their roles, from ``PHALANX_CONSOLE_USERS`` (ADR-0131).

``admin`` may change things; ``viewer`` sees every page and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from phalanx_console.passwords import hash_password, verify_password

__all__ = ["ROLES", "Role", "User", "Users"]

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")


@dataclass(frozen=True)
class User:
    """One user: name, role and password hash."""

    name: str
    role: Role
    password_hash: str


class Users:
    """The users who may sign in.

    Args:
        users: Every user (names are unique).
    """

    def __init__(self, users: list[User]) -> None:
        self._by_name = {u.name: u for u in users}
        # checked when the name is unknown, so a wrong name costs as much as a wrong password
        self._decoy = hash_password("decoy-password-never-matches-anything")

    @classmethod
    def parse(cls, text: str) -> Users:
        """Read ``name:role:hash`` entries separated by commas.

        Raises:
            ValueError: an entry is malformed, a role unknown or a name repeated.
        """
        users: list[User] = []
        seen: set[str] = set()
        for entry in (e.strip() for e in text.split(",")):
            if not entry:
                continue
            name, _, rest = entry.partition(":")
            role, _, password_hash = rest.partition(":")
            if not name or not password_hash:
                raise ValueError(f"PHALANX_CONSOLE_USERS: {name or '?'}: need name:role:hash")
            if role not in ROLES:
                raise ValueError(f"PHALANX_CONSOLE_USERS: {name}: role must be admin or viewer")
            if name in seen:
                raise ValueError(f"PHALANX_CONSOLE_USERS: {name} appears twice")
            seen.add(name)
            users.append(User(name, "admin" if role == "admin" else "viewer", password_hash))
        return cls(users)

    def __len__(self) -> int:
        return len(self._by_name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else ``None``."""
        user = self._by_name.get(name)
        if user is None:
            verify_password(password, self._decoy)
            return None
        return user if verify_password(password, user.password_hash) else None
