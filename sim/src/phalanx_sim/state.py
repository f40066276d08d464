"""In-memory venue state: users, sessions, accounts and every entity, indexed for O(1) access.

Nothing here scans all orders: orders are indexed by account, fills, commands and versions by
order, reports by command, and every entity by its (globally unique) id. The id index holds the
entity alone (no tuple per entity, ADR-0187): its type name comes from its class, its account
from its own fields or its order's.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from phalanx_sim.contracts import ContractInfo
from phalanx_sim.entities import (
    Account,
    CashBalance,
    Command,
    CommandReport,
    Entity,
    ExecutionReport,
    Fill,
    Order,
    OrderVersion,
    Position,
    User,
)
from phalanx_sim.fees import FillFee

__all__ = [
    "ENTITY_TYPES",
    "AccountBook",
    "CommandRecord",
    "OAuthClient",
    "OAuthCode",
    "OrderRecord",
    "RequestRecord",
    "Session",
    "SimState",
    "UserRecord",
]

_FIRST_ID = 10_000_000

#: the entity types reachable by ``<type>/item?id=``, by class
ENTITY_TYPES: dict[type[Entity], str] = {
    Account: "account",
    CashBalance: "cashBalance",
    Command: "command",
    CommandReport: "commandReport",
    ExecutionReport: "executionReport",
    Fill: "fill",
    Order: "order",
    OrderVersion: "orderVersion",
    Position: "position",
}


@dataclass(slots=True)
class UserRecord:
    """A login: the User entity, its password and its accounts (in creation order)."""

    user: User
    password: str
    account_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Session:
    """One access token (a server session) of a user."""

    token: str
    md_token: str
    user_id: int
    session_id: int
    expires_at: float
    revoked: bool = False

    def valid_at(self, now: float) -> bool:
        """Whether the token is still usable at epoch second ``now`` (not expired nor revoked)."""
        return now < self.expires_at and not self.revoked


@dataclass(slots=True)
class CommandRecord:
    """A command with its reports."""

    command: Command
    account_id: int
    reports: list[CommandReport] = field(default_factory=list)
    executions: list[ExecutionReport] = field(default_factory=list)


@dataclass(slots=True)
class OrderRecord:
    """An order with its versions, commands, fills and matching state."""

    order: Order
    version: OrderVersion
    info: ContractInfo
    account: Account
    versions: list[OrderVersion] = field(default_factory=list)
    commands: list[CommandRecord] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    cum_qty: int = 0
    avg_px: float | None = None
    generation: int = 0
    triggered: bool = False
    #: ``exchangeOrderId`` of its execution reports (one string for all of them)
    exchange_order_id: str = ""

    @property
    def new_command(self) -> CommandRecord:
        """The command that created the order."""
        return self.commands[0]


@dataclass(slots=True)
class AccountBook:
    """Per-account indices."""

    account: Account
    cash: CashBalance
    orders: dict[int, OrderRecord] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)
    #: fill id -> fill, oldest first (forgotten with their orders, retention.py)
    fills: dict[int, Fill] = field(default_factory=dict)
    live: dict[int, OrderRecord] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class OAuthClient:
    """A registered OAuth application."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class OAuthCode:
    """An issued authorization code (single-use)."""

    code: str
    client_id: str
    redirect_uri: str
    user_id: int
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass(slots=True, frozen=True)
class RequestRecord:
    """One request the venue received (REST or WebSocket)."""

    time: float
    user_id: int | None
    endpoint: str
    transport: str
    status: int


class SimState:
    """Everything the venue knows; the matching engine and handlers mutate it."""

    def __init__(self, request_log_max: int = 200_000, first_id: int = _FIRST_ID) -> None:
        self._ids = itertools.count(first_id)
        self.users: dict[int, UserRecord] = {}
        self.users_by_name: dict[str, UserRecord] = {}
        self.sessions: dict[str, Session] = {}
        # user id -> its open server sessions (session id -> tokens), oldest first
        self.user_sessions: dict[int, dict[int, list[Session]]] = {}
        self.accounts: dict[int, Account] = {}
        self.accounts_by_name: dict[str, Account] = {}
        self.books: dict[int, AccountBook] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.commands: dict[int, CommandRecord] = {}
        #: every entity reachable by ``<type>/item?id=``, by id
        self.entities: dict[int, Entity] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=max(1, request_log_max))
        self.by_endpoint: Counter[str] = Counter()
        self.by_user: Counter[int] = Counter()
        self.violations: list[dict[str, Any]] = []
        self.oauth_clients: dict[str, OAuthClient] = {}
        self.oauth_codes: dict[str, OAuthCode] = {}
        self.counters: Counter[str] = Counter()
        #: fill id -> (its FillFee, account id); FillFee ids are their fills' ids
        self.fill_fees: dict[int, tuple[FillFee, int]] = {}

    def next_id(self) -> int:
        """A new entity id, unique across all entity types."""
        return next(self._ids)

    def new_token(self) -> str:
        """A new opaque access token."""
        return secrets.token_urlsafe(32)

    def register(self, entity: Entity) -> None:
        """Make an entity (of a type in :data:`ENTITY_TYPES`) reachable by ``<type>/item?id=``."""
        self.entities[entity.id] = entity

    def account_of(self, entity: Entity) -> int | None:
        """The account an entity belongs to (``None``: its order or command is not held)."""
        if isinstance(entity, Order | ExecutionReport | Position | CashBalance):
            return entity.accountId
        if isinstance(entity, OrderVersion | Fill | Command):
            rec = self.orders.get(entity.orderId)
            return None if rec is None else rec.account.id
        if isinstance(entity, CommandReport):
            crec = self.commands.get(entity.commandId)
            return None if crec is None else crec.account_id
        return entity.id if isinstance(entity, Account) else None

    def record_request(self, record: RequestRecord) -> None:
        """Log a request and count it per endpoint and per user (O(1))."""
        self.requests.append(record)
        self.by_endpoint[record.endpoint] += 1
        if record.user_id is not None:
            self.by_user[record.user_id] += 1
