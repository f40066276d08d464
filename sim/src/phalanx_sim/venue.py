"""The venue: every Tradovate endpoint, shared by the REST and the WebSocket transports.

:meth:`Venue.handle` takes an endpoint name (matched case-insensitively, so ``order/placeOSO``
and ``order/placeoso`` are the same), the caller's session, the raw query string and the raw
body, and returns a :class:`Reply` (an HTTP-like status and a payload). The transports only frame
it: REST as the HTTP status and JSON body, the socket as ``a[{"s":..,"i":..,"d":..}]``.

Decisions where the reference is silent or uncertain (docs/tradovate-protocol.md):

- Wrong credentials: HTTP 200 with ``{"errorText": ...}`` (as the venue does, §2.1).
- Missing or invalid token: status 401 with ``"Access is denied"``.
- Orders on an account the user does not own, or whose ``accountSpec`` does not match its
  ``accountId``: by default HTTP 200 ``{"failureReason": "Unauthorized", "failureText":
  "Access is denied"}`` (``Unauthorized`` is in the official failureReason enum); with
  ``sim_foreign_account_mode="denied"`` status 401 ``"Access is denied"`` instead.
- An order without ``accountId``/``accountSpec``: HTTP 200 with failureReason ``UnknownReason``
  and a ``Violation: ...`` text (§4.3 says a "Violation" response).
- Canceling or modifying an order that is no longer working: failureReason ``TooLate``.
- ``liquidateposition`` on a flat position cancels the contract's working orders and answers
  failureReason ``UnknownReason``, failureText ``No position to liquidate``.
- Malformed bodies (wrong JSON types, missing required fields): status 400 with ``errorText``.
- ``<type>/item`` of an unknown or foreign id: status 404; ``deps`` of a foreign master: ``[]``.
- Unknown endpoints: status 404 with ``d`` = ``"\\"Not found: <endpoint>\\""`` (as observed).
- ``clOrdId`` is stored on the Command and never deduplicated.
- Market closed (``sim_session_closed`` or ``POST /admin/market``) → failureReason
  ``SessionClosed`` for every new order; a position beyond the account's max position
  (``sim_max_position`` or ``POST /admin/risk``) → ``MaxPosLimitReached`` (orders that reduce
  the position are always allowed).
- Faults and rate limits (``faults.py``, ``limits.py``) are applied before an endpoint runs.
"""

# ruff: noqa: N815

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl

import msgspec

from phalanx_sim.contracts import ContractBook, ContractInfo, on_tick
from phalanx_sim.entities import Account, CashBalance, Entity, User
from phalanx_sim.faults import DROPPABLE, Faults
from phalanx_sim.limits import LimitConfig, Limiter, Verdict
from phalanx_sim.matching import EventSink, MatchingEngine, NullSink, OrderSpec, Origin
from phalanx_sim.schemas import (
    AccessTokenRequest,
    AccessTokenResponse,
    Bracket,
    CancelOrderBody,
    CommandResult,
    ErrorText,
    LiquidatePositionBody,
    ModifyOrderBody,
    PlaceOrderBody,
    PlaceOrderResult,
    PlaceOsoBody,
    PlaceOsoResult,
    SyncRequestBody,
)
from phalanx_sim.settings import SimSettings
from phalanx_sim.state import (
    AccountBook,
    CommandRecord,
    OrderRecord,
    RequestRecord,
    Session,
    SimState,
    UserRecord,
)
from phalanx_sim.times import VenueClock, iso_from_epoch

__all__ = ["ACCESS_DENIED", "SNAPSHOT_KEYS", "CreatedUser", "Reply", "Subscription", "Venue"]

ACCESS_DENIED = "Access is denied"
log = logging.getLogger(__name__)
T = TypeVar("T")

#: entityType (as in ``entityTypes`` and props events) → key of the syncrequest snapshot.
SNAPSHOT_KEYS: dict[str, str] = {
    "user": "users",
    "account": "accounts",
    "accountRiskStatus": "accountRiskStatuses",
    "marginSnapshot": "marginSnapshots",
    "userAccountAutoLiq": "userAccountAutoLiqs",
    "cashBalance": "cashBalances",
    "currency": "currencies",
    "position": "positions",
    "fillPair": "fillPairs",
    "order": "orders",
    "contract": "contracts",
    "contractMaturity": "contractMaturities",
    "product": "products",
    "exchange": "exchanges",
    "spreadDefinition": "spreadDefinitions",
    "command": "commands",
    "commandReport": "commandReports",
    "executionReport": "executionReports",
    "orderVersion": "orderVersions",
    "fill": "fills",
    "orderStrategy": "orderStrategies",
    "orderStrategyLink": "orderStrategyLinks",
    "orderStrategyType": "orderStrategyTypes",
    "userProperty": "userProperties",
    "property": "properties",
    "userPlugin": "userPlugins",
    "contractGroup": "contractGroups",
    "userReadStatus": "userReadStatuses",
}
_SNAPSHOT_KEYS_LOWER = {name.lower(): name for name in SNAPSHOT_KEYS}
_ORDER_TYPES = frozenset({"Market", "Limit", "Stop", "StopLimit", "TrailingStop"})
_KNOWN_ORDER_TYPES = _ORDER_TYPES | {"MIT", "QTS", "TrailingStopLimit"}
_TIME_IN_FORCE = frozenset({"Day", "GTC", "IOC", "FOK"})
_KNOWN_TIME_IN_FORCE = _TIME_IN_FORCE | {"GTD"}
_ACTIONS = frozenset({"Buy", "Sell"})


class Reply(NamedTuple):
    """What an endpoint answers: an HTTP-like status and a JSON-encodable payload.

    ``drop`` (the response is lost after the request was handled) and ``delay`` (seconds to
    hold the response) come from faults; the transports apply them.
    """

    status: int
    payload: Any = None
    user_id: int | None = None
    drop: bool = False
    delay: float = 0.0


def refused_reply(verdict: Verdict, user_id: int | None) -> Reply:
    """The reply of a request refused by the limiter (penalty, 423 or 429)."""
    return Reply(verdict.status, verdict.payload, user_id)


_ENDPOINT_LIMITED = frozenset(
    {"auth/accesstokenrequest", "auth/renewaccesstoken", "auth/me", "user/syncrequest"}
)
_TICKET_DECODER = msgspec.json.Decoder(dict[str, Any])


def _ticket_of(body: bytes | str) -> str | None:
    """The ``p-ticket`` of a resent request body, if any (cheap when there is none)."""
    if isinstance(body, str):
        if "p-ticket" not in body:
            return None
    elif b"p-ticket" not in body:
        return None
    try:
        ticket = _TICKET_DECODER.decode(body).get("p-ticket")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return str(ticket) if ticket is not None else None


def _login_name(body: bytes | str) -> str:
    try:
        name = _TICKET_DECODER.decode(body).get("name")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return ""
    return str(name) if name is not None else ""


class Subscription(NamedTuple):
    """What a ``user/syncrequest`` subscribed a socket to."""

    account_ids: tuple[int, ...]
    entity_types: frozenset[str] | None


class CreatedUser(msgspec.Struct, kw_only=True):
    """A user created by the admin API or the seed: its id, name and accounts."""

    userId: int
    name: str
    accounts: list[dict[str, Any]]


Handler = Callable[["Venue", Session | None, str, bytes | str], Reply]

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decode(body: bytes | str, type_: type[T]) -> T:
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    value: T = decoder.decode(body)
    return value


def _query(query: str) -> dict[str, str]:
    return {key.lower(): value for key, value in parse_qsl(query)}


def _int_param(query: str, name: str) -> int | None:
    value = _query(query).get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _ids_param(query: str, name: str) -> list[int]:
    value = _query(query).get(name, "")
    return [int(part) for part in value.split(",") if part.strip().isdigit()]


class Venue:
    """The simulated Tradovate venue (state, contracts, matching) behind both transports."""

    def __init__(self, settings: SimSettings | None = None, clock: VenueClock | None = None):
        self.settings = settings or SimSettings()
        self.clock = clock or VenueClock()
        self.contracts = ContractBook()
        self._sink: EventSink = NullSink()
        self.state = SimState(self.settings.sim_request_log_max)
        self.engine = MatchingEngine(self.state, self.clock, self._sink)
        self._routes: dict[str, tuple[Handler, bool]] = _build_routes()
        self.limiter = Limiter(
            LimitConfig.from_settings(self.settings), self.settings.sim_violation_log_max
        )
        #: fault sets by user id (``None``: everyone)
        self.faults: dict[int | None, Faults] = {}
        #: draws of the random faults (``dropRate``, ``errorRate``)
        self.fault_draws = random.Random()  # noqa: S311 - fault injection, not security
        self.market_open = not self.settings.sim_session_closed
        self._release: asyncio.Event | None = None
        #: max absolute position per account (overrides ``sim_max_position``)
        self.max_position: dict[int, int] = {}
        #: called with ``(user_id, session_id, reason)`` when a server session is closed
        self.on_session_closed: Callable[[int, int, str], None] | None = None

    # ------------------------------------------------------------------ setup

    @property
    def sink(self) -> EventSink:
        """Where entity changes go (the WebSocket hub)."""
        return self._sink

    @sink.setter
    def sink(self, sink: EventSink) -> None:
        self._sink = sink
        self.engine.sink = sink

    def reset(self) -> None:
        """Forget every user, account, order and price."""
        # ids keep growing across resets, so a stale client id never names a new entity
        self.state = SimState(self.settings.sim_request_log_max, self.state.next_id())
        self.limiter.reset()
        self.faults.clear()
        self.max_position.clear()
        self.market_open = not self.settings.sim_session_closed
        self.engine = MatchingEngine(self.state, self.clock, self._sink)

    def create_user(
        self, name: str, password: str, accounts: int | Iterable[str] = 1
    ) -> CreatedUser:
        """Create a login with accounts (a count, named ``DEMO<7 digits>``, or explicit names).

        Raises:
            ValueError: if the user name or an account name is taken.
        """
        state = self.state
        if name in state.users_by_name:
            raise ValueError(f"user {name!r} exists")
        names = (
            [self._account_name() for _ in range(accounts)]
            if isinstance(accounts, int)
            else list(accounts)
        )
        for account_name in names:
            if account_name in state.accounts_by_name:
                raise ValueError(f"account {account_name!r} exists")
        ts = self.clock.now_iso()
        user = User(
            id=state.next_id(),
            name=name,
            timestamp=ts,
            email=f"{name}@example.com",
            status="Active",
            professional=False,
            twoFactorAuth=False,
        )
        record = UserRecord(user=user, password=password)
        state.users[user.id] = record
        state.users_by_name[name] = record
        created: list[dict[str, Any]] = []
        for account_name in names:
            account = Account(
                id=state.next_id(),
                name=account_name,
                userId=user.id,
                timestamp=ts,
                accountType="Customer",
                active=True,
                clearingHouseId=2,
                riskCategoryId=2,
                autoLiqProfileId=2,
                marginAccountType="Speculator",
                legalStatus="Individual",
                archived=False,
                readonly=False,
            )
            cash = CashBalance(
                id=state.next_id(),
                accountId=account.id,
                timestamp=ts,
                tradeDate=self.clock.trade_date(),
                currencyId=1,
                amount=self.settings.sim_starting_balance,
                realizedPnL=0.0,
                weekRealizedPnL=0.0,
            )
            state.accounts[account.id] = account
            state.accounts_by_name[account_name] = account
            state.books[account.id] = AccountBook(account=account, cash=cash)
            state.register("account", account, account.id)
            state.register("cashBalance", cash, account.id)
            record.account_ids.append(account.id)
            created.append({"id": account.id, "name": account_name})
        return CreatedUser(userId=user.id, name=name, accounts=created)

    def _account_name(self) -> str:
        prefix = self.settings.sim_account_prefix
        while True:
            candidate = f"{prefix}{1_000_000 + self.state.next_id() % 9_000_000}"
            if candidate not in self.state.accounts_by_name:
                return candidate

    def set_price(self, symbol: str, price: float) -> tuple[ContractInfo, list[int]]:
        """Set a contract's price and fill the resting orders it crosses.

        Raises:
            KeyError: unknown symbol.
            ValueError: price not on the contract's tick.
        """
        info = self.contracts.resolve(symbol)
        if info is None:
            raise KeyError(symbol)
        if not on_tick(price, info.spec.tick_size):
            raise ValueError(f"{price} is not a multiple of tick size {info.spec.tick_size}")
        return info, self.engine.set_price(info, price)

    # ------------------------------------------------------------------ dispatch

    def issue_session(self, record: UserRecord, session_id: int | None = None) -> Session:
        """A new token: a new server session (``session_id=None``) or a renewal of one.

        A new session beyond ``sim_max_sessions_per_user`` closes the user's oldest session:
        its tokens are revoked and :attr:`on_session_closed` closes its sockets.
        """
        state = self.state
        now = self.clock.time()
        user_id = record.user.id
        sessions = state.user_sessions.setdefault(user_id, {})
        if session_id is None:
            session_id = state.next_id()
            for old_id, old_tokens in list(sessions.items()):
                if all(not t.valid_at(now) for t in old_tokens):
                    del sessions[old_id]
            limit = self.settings.sim_max_sessions_per_user
            while limit > 0 and len(sessions) >= limit:
                oldest = next(iter(sessions))
                self.close_session(user_id, oldest, "Session closed: too many sessions")
        session = Session(
            token=state.new_token(),
            md_token=state.new_token(),
            user_id=user_id,
            session_id=session_id,
            expires_at=now + self.settings.sim_token_lifetime_s,
        )
        state.sessions[session.token] = session
        tokens = sessions.setdefault(session_id, [])
        # forget expired tokens of the session so a long-lived session stays small
        tokens[:] = [t for t in tokens if t.expires_at > now]
        tokens.append(session)
        return session

    def close_session(self, user_id: int, session_id: int, reason: str) -> None:
        """Revoke every token of a server session and close its sockets."""
        tokens = self.state.user_sessions.get(user_id, {}).pop(session_id, [])
        for session in tokens:
            session.revoked = True
            self.state.sessions.pop(session.token, None)
        if self.on_session_closed is not None:
            self.on_session_closed(user_id, session_id, reason)

    def revoke_token(self, session: Session) -> None:
        """Revoke one token (its session lives on through other tokens, if any)."""
        session.revoked = True
        self.state.sessions.pop(session.token, None)
        tokens = self.state.user_sessions.get(session.user_id, {}).get(session.session_id)
        if tokens is not None and session in tokens:
            tokens.remove(session)

    def authenticate(self, token: str | None) -> Session | None:
        """The live session of an access token, or ``None``."""
        if not token:
            return None
        session = self.state.sessions.get(token)
        if session is None or not session.valid_at(self.clock.time()):
            return None
        return session

    def is_public(self, endpoint: str) -> bool:
        """Whether an endpoint works without a token."""
        route = self._routes.get(endpoint.lower())
        return route is not None and route[1]

    def handle(
        self,
        endpoint: str,
        session: Session | None,
        query: str = "",
        body: bytes | str = b"",
        transport: str = "rest",
        client: str = "",
    ) -> Reply:
        """Serve one request and record it for ``/admin/requests`` and ``/admin/stats``.

        Faults and limits come first (:meth:`admit`): a refused request is not handled.
        """
        key = endpoint.strip("/").lower()
        route = self._routes.get(key)
        now = self.clock.time()
        if route is None:
            reply = Reply(404, f'"Not found: {endpoint}"')
        elif not route[1] and session is None:
            reply = Reply(401, ACCESS_DENIED)
            if key == "auth/me" and self.limits.enabled:
                refused = self.limiter.check_endpoint(client, key, now, transport)
                reply = refused_reply(refused, None) if refused is not None else reply
                self.limiter.count_endpoint(client, key, True, now)
        else:
            refused_by = self.admit(key, session, body, transport, client, now)
            if refused_by is not None:
                reply = refused_by
            else:
                try:
                    reply = route[0](self, session, query, body)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    reply = Reply(400, ErrorText(errorText=f"Invalid request: {exc}"))
                except Exception:  # a simulator bug must not kill the socket or the server
                    log.exception("endpoint %s failed", key)
                    reply = Reply(500, '"Internal error"')
                reply = self.settle(key, session, body, reply, client, now)
        user_id = (
            reply.user_id
            if reply.user_id is not None
            else (session.user_id if session is not None else None)
        )
        self.state.record_request(RequestRecord(now, user_id, key, transport, reply.status))
        return reply

    # ------------------------------------------------------------------ faults and limits

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds`` or until :meth:`release_hung` (the dropped-response fault)."""
        if self._release is None:
            self._release = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), seconds)

    def release_hung(self) -> None:
        """End every :meth:`hang` now (the simulator is stopping)."""
        if self._release is not None:
            self._release.set()
            self._release = None

    @property
    def limits(self) -> LimitConfig:
        """The limits in force."""
        return self.limiter.config

    def _login_key(self, key: str, session: Session | None, body: bytes | str) -> int | str:
        if session is not None:
            return session.user_id
        if key == "auth/accesstokenrequest":
            name = _login_name(body)
            record = self.state.users_by_name.get(name)
            return record.user.id if record is not None else name.lower()
        return ""

    def _endpoint_key(self, login: int | str, client: str) -> int | str:
        return client if self.limiter.config.endpoint_scope == "ip" else login

    def _faults(self, login: int | str) -> list[Faults]:
        found: list[Faults] = []
        own = self.faults.get(login) if isinstance(login, int) else None
        if own is not None:
            found.append(own)
        common = self.faults.get(None)
        if common is not None:
            found.append(common)
        return found

    def _prune(self, faults: Faults) -> None:
        if faults.idle and self.faults.get(faults.userId) is faults:
            del self.faults[faults.userId]

    def admit(
        self,
        key: str,
        session: Session | None,
        body: bytes | str,
        transport: str,
        client: str,
        now: float,
    ) -> Reply | None:
        """Faults and limits before handling: the refusal, or ``None`` to handle the request."""
        if key == "authorize" and not self.limiter.config.count_authorize:
            return None
        faults_on = bool(self.faults)
        limits_on = self.limiter.config.enabled
        if not faults_on and not limits_on:
            return None
        login = self._login_key(key, session, body)
        ticket = _ticket_of(body)
        user_id = session.user_id if session is not None else None
        if faults_on:
            for faults in self._faults(login):
                if faults.errorCount > 0 and faults.applies_to(key):
                    faults.errorCount -= 1
                    self._prune(faults)
                    self.state.counters["faultErrors"] += 1
                    return Reply(faults.errorStatus, '"Service Unavailable"', user_id)
                if (
                    faults.errorRate > 0
                    and faults.applies_to(key)
                    and self.fault_draws.random() < faults.errorRate
                ):
                    self.state.counters["faultErrors"] += 1
                    return Reply(faults.errorStatus, '"Service Unavailable"', user_id)
            if ticket is not None and self.limiter.redeem(login, ticket, now):
                ticket = None  # a storm ticket, honoured
            else:
                for faults in self._faults(login):
                    if faults.penaltyCount > 0 and faults.applies_to(key):
                        faults.penaltyCount -= 1
                        self._prune(faults)
                        storm = self.limiter.penalty(login, faults.penaltyTimeS, now)
                        return Reply(storm.status, storm.payload, user_id)
        if not limits_on:
            return None
        if session is not None:
            refused = self.limiter.check_login(session.user_id, key, ticket, now, transport)
            if refused is not None:
                return refused_reply(refused, user_id)
        refused = self.limiter.check_endpoint(
            self._endpoint_key(login, client), key, now, transport
        )
        return refused_reply(refused, user_id) if refused is not None else None

    def settle(
        self,
        key: str,
        session: Session | None,
        body: bytes | str,
        reply: Reply,
        client: str,
        now: float,
    ) -> Reply:
        """After handling: count endpoint limits, apply the drop and latency faults."""
        if self.limiter.config.enabled and key in _ENDPOINT_LIMITED:
            failed = reply.status != 200 or isinstance(reply.payload, ErrorText)
            login = self._login_key(key, session, body)
            self.limiter.count_endpoint(self._endpoint_key(login, client), key, failed, now)
        if not self.faults or session is None:
            return reply
        for faults in self._faults(session.user_id):
            if (
                (faults.dropResponses > 0 or faults.dropRate > 0)
                and key in DROPPABLE
                and reply.status == 200
                and getattr(reply.payload, "orderId", None) is not None
            ):
                if faults.dropResponses > 0:
                    faults.dropResponses -= 1
                    self._prune(faults)
                elif self.fault_draws.random() >= faults.dropRate:
                    continue
                self.state.counters["faultDrops"] += 1
                reply = reply._replace(drop=True)
                break
        for faults in self._faults(session.user_id):
            if faults.latencyMs > 0:
                spread = abs(faults.latencyJitterMs)
                delay_ms = faults.latencyMs + (
                    self.fault_draws.uniform(-spread, spread) if spread > 0 else 0.0
                )
                return reply._replace(delay=max(0.0, delay_ms) / 1000.0)
        return reply

    def record(self, endpoint: str, user_id: int | None, transport: str, status: int) -> None:
        """Record a request served outside :meth:`handle` (``authorize``, socket sync)."""
        self.state.record_request(
            RequestRecord(self.clock.time(), user_id, endpoint, transport, status)
        )

    # ------------------------------------------------------------------ helpers for handlers

    def user_of(self, session: Session) -> UserRecord:
        """The user record behind a session."""
        return self.state.users[session.user_id]

    def owned_book(self, session: Session, account_id: int | None) -> AccountBook | None:
        """The book of an account the session's user owns, else ``None``."""
        if account_id is None:
            return None
        book = self.state.books.get(account_id)
        if book is None or book.account.userId != session.user_id:
            return None
        return book

    def owned_order(self, session: Session, order_id: int) -> OrderRecord | None:
        """An order of one of the session user's accounts, else ``None``."""
        rec = self.state.orders.get(order_id)
        if rec is None or rec.account.userId != session.user_id:
            return None
        return rec

    def denied(self) -> Reply:
        """How an order on a foreign account is answered (see ``sim_foreign_account_mode``)."""
        if self.settings.sim_foreign_account_mode == "denied":
            return Reply(401, ACCESS_DENIED)
        return Reply(200, PlaceOrderResult(failureReason="Unauthorized", failureText=ACCESS_DENIED))

    def origin(
        self,
        session: Session,
        is_automated: bool,
        tag50: str | None = None,
        activation: str | None = None,
    ) -> Origin:
        """The Origin of a command sent in a session."""
        return Origin(session.user_id, session.session_id, is_automated, tag50, activation)

    def snapshot(
        self, session: Session, body: SyncRequestBody
    ) -> tuple[dict[str, list[Any]], Subscription]:
        """Build a ``user/syncrequest`` snapshot and the subscription it implies."""
        record = self.user_of(session)
        own = record.account_ids
        if body.accounts:
            wanted = set(body.accounts)
            account_ids = tuple(a for a in own if a in wanted)
        else:
            account_ids = tuple(own)
        if body.users is not None and body.users and session.user_id not in body.users:
            account_ids = tuple(a for a in account_ids if body.accounts and a in body.accounts)
        types: frozenset[str] | None
        if body.entityTypes:
            types = frozenset(
                _SNAPSHOT_KEYS_LOWER[t.lower()]
                for t in body.entityTypes
                if t.lower() in _SNAPSHOT_KEYS_LOWER
            )
        elif self.settings.sim_sync_require_entity_types:
            types = frozenset()
        else:
            types = None
        keys = SNAPSHOT_KEYS if types is None else {t: SNAPSHOT_KEYS[t] for t in types}
        data: dict[str, list[Any]] = {key: [] for key in keys.values()}

        def want(entity_type: str) -> bool:
            return types is None or entity_type in types

        books = [self.state.books[a] for a in account_ids]
        if want("user"):
            data["users"].append(record.user)
        contract_ids: set[int] = set()
        for book in books:
            if want("account"):
                data["accounts"].append(book.account)
            if want("cashBalance"):
                data["cashBalances"].append(book.cash)
            for position in book.positions.values():
                contract_ids.add(position.contractId)
                if want("position"):
                    data["positions"].append(position)
            for rec in book.orders.values():
                contract_ids.add(rec.order.contractId)
                if want("order"):
                    data["orders"].append(rec.order)
                if want("orderVersion"):
                    data["orderVersions"].extend(rec.versions)
                if want("fill"):
                    data["fills"].extend(rec.fills)
                for crec in rec.commands:
                    if want("command"):
                        data["commands"].append(crec.command)
                    if want("commandReport"):
                        data["commandReports"].extend(crec.reports)
                    if want("executionReport"):
                        data["executionReports"].extend(crec.executions)
        infos = [i for i in (self.contracts.by_id(c) for c in sorted(contract_ids)) if i]
        if want("contract"):
            data["contracts"] = [i.contract for i in infos]
        if want("contractMaturity"):
            data["contractMaturities"] = [i.maturity for i in infos]
        if want("product"):
            data["products"] = list({i.product.id: i.product for i in infos}.values())
        return data, Subscription(account_ids, types)

    def order_spec(self, body: PlaceOrderBody | Bracket, qty: int) -> OrderSpec:
        """The engine's view of an order body or bracket."""
        return OrderSpec(
            action=body.action,
            order_type=body.orderType,
            qty=qty,
            price=body.price,
            stop_price=body.stopPrice,
            time_in_force=body.timeInForce,
            text=body.text,
            cl_ord_id=body.clOrdId,
            max_show=body.maxShow,
            peg_difference=body.pegDifference,
            expire_time=body.expireTime,
        )


# ---------------------------------------------------------------------- validation


def _price_failure(
    info: ContractInfo,
    order_type: str,
    action: str,
    price: float | None,
    stop_price: float | None,
    peg: float | None = None,
    time_in_force: str | None = None,
) -> tuple[str, str] | None:
    if action not in _ACTIONS:
        return "UnknownReason", f"Violation: action must be Buy or Sell, not {action!r}"
    if order_type not in _KNOWN_ORDER_TYPES:
        return "UnknownReason", f"Violation: unknown orderType {order_type!r}"
    if order_type not in _ORDER_TYPES:
        return "Unsupported", f"orderType {order_type} is not supported by the simulator"
    if time_in_force is not None and time_in_force not in _KNOWN_TIME_IN_FORCE:
        return "UnknownReason", f"Violation: unknown timeInForce {time_in_force!r}"
    if time_in_force is not None and time_in_force not in _TIME_IN_FORCE:
        return "Unsupported", f"timeInForce {time_in_force} is not supported by the simulator"
    tick = info.spec.tick_size
    needs_price = order_type in ("Limit", "StopLimit")
    needs_stop = order_type in ("Stop", "StopLimit", "TrailingStop")
    if order_type == "TrailingStop" and (peg is None or abs(peg) < tick / 2):
        return "InvalidPrice", "TrailingStop order requires a non-zero pegDifference"
    if peg is not None and not on_tick(peg, tick):
        return "InvalidPrice", f"Invalid pegDifference {peg}: tick size is {tick}"
    if needs_price and price is None:
        return "InvalidPrice", f"{order_type} order requires price"
    if needs_stop and stop_price is None:
        return "InvalidPrice", f"{order_type} order requires stopPrice"
    if needs_price and price is not None and not on_tick(price, tick):
        return "InvalidPrice", f"Invalid price {price}: tick size of {info.contract.name} is {tick}"
    if needs_stop and stop_price is not None and not on_tick(stop_price, tick):
        return (
            "InvalidPrice",
            f"Invalid stop price {stop_price}: tick size of {info.contract.name} is {tick}",
        )
    return None


def _check_order(
    venue: Venue, session: Session, body: PlaceOrderBody
) -> tuple[AccountBook, ContractInfo] | Reply:
    if body.accountId is None or body.accountSpec is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="UnknownReason",
                failureText="Violation: accountId and accountSpec are required",
            ),
        )
    book = venue.owned_book(session, body.accountId)
    if book is None or book.account.name != body.accountSpec:
        return venue.denied()
    info = venue.contracts.resolve(body.symbol)
    if info is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="InvalidContract", failureText=f"Unknown contract {body.symbol!r}"
            ),
        )
    if body.orderQty <= 0:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="UnknownReason", failureText="Violation: orderQty must be positive"
            ),
        )
    failure = _price_failure(
        info,
        body.orderType,
        body.action,
        body.price,
        body.stopPrice,
        body.pegDifference,
        body.timeInForce,
    )
    if failure is None:
        failure = _risk_failure(venue, book, info, body.action, body.orderQty)
    if failure is not None:
        return Reply(200, PlaceOrderResult(failureReason=failure[0], failureText=failure[1]))
    return book, info


def _risk_failure(
    venue: Venue, book: AccountBook, info: ContractInfo, action: str, qty: int
) -> tuple[str, str] | None:
    if not venue.market_open:
        return "SessionClosed", "Trading session is closed"
    limit = venue.max_position.get(book.account.id, venue.settings.sim_max_position)
    if limit > 0:
        position = book.positions.get(info.contract.id)
        net = position.netPos if position is not None else 0
        after = net + (qty if action == "Buy" else -qty)
        if abs(after) > limit and abs(after) > abs(net):
            return (
                "MaxPosLimitReached",
                f"Max position of {limit} for {info.contract.name} would be exceeded ({after})",
            )
    return None


# ---------------------------------------------------------------------- handlers


def _access_token_request(venue: Venue, _s: Session | None, _q: str, body: bytes | str) -> Reply:
    request = _decode(body, AccessTokenRequest)
    record = venue.state.users_by_name.get(request.name)
    if record is None or record.password != request.password:
        return Reply(200, ErrorText(errorText="Incorrect username or password. Please try again."))
    return _issue_token(venue, record, None)


def _issue_token(venue: Venue, record: UserRecord, session_id: int | None) -> Reply:
    session = venue.issue_session(record, session_id)
    now = venue.clock.time()
    response = AccessTokenResponse(
        accessToken=session.token,
        mdAccessToken=session.md_token,
        expirationTime=iso_from_epoch(session.expires_at),
        passwordExpirationTime=iso_from_epoch(now + 365 * 86400.0),
        userStatus="Active",
        userId=record.user.id,
        name=record.user.name,
        hasLive=False,
    )
    return Reply(200, response, record.user.id)


def _renew_access_token(venue: Venue, session: Session | None, _q: str, _b: bytes | str) -> Reply:
    assert session is not None
    return _issue_token(venue, venue.user_of(session), session.session_id)


def _me(venue: Venue, session: Session | None, _q: str, _b: bytes | str) -> Reply:
    assert session is not None
    user = venue.user_of(session).user
    return Reply(
        200,
        {
            "userId": user.id,
            "name": user.name,
            "fullName": user.name,
            "email": user.email,
            "emailVerified": True,
            "isTrial": False,
        },
    )


def _sync_request(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body or b"{}", SyncRequestBody)
    data, _ = venue.snapshot(session, request)
    return Reply(200, data)


def _place_order(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body, PlaceOrderBody)
    venue.state.counters["placeorder"] += 1
    checked = _check_order(venue, session, request)
    if isinstance(checked, Reply):
        return checked
    book, info = checked
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    entry, _ = venue.engine.place(book, info, venue.order_spec(request, request.orderQty), origin)
    return Reply(200, PlaceOrderResult(orderId=entry.order.id))


def _place_oso(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body, PlaceOsoBody)
    venue.state.counters["placeoso"] += 1
    checked = _check_order(venue, session, request)
    if isinstance(checked, Reply):
        return checked
    book, info = checked
    brackets = [b for b in (request.bracket1, request.bracket2) if b is not None]
    for bracket in brackets:
        failure = _price_failure(
            info,
            bracket.orderType,
            bracket.action,
            bracket.price,
            bracket.stopPrice,
            bracket.pegDifference,
            bracket.timeInForce,
        )
        if failure is not None:
            return Reply(200, PlaceOsoResult(failureReason=failure[0], failureText=failure[1]))
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    qty = request.orderQty
    entry, children = venue.engine.place(
        book,
        info,
        venue.order_spec(request, qty),
        origin,
        [venue.order_spec(b, qty) for b in brackets],
    )
    return Reply(
        200,
        PlaceOsoResult(
            orderId=entry.order.id,
            oso1Id=children[0].order.id,
            oso2Id=children[1].order.id if len(children) > 1 else None,
        ),
    )


def _command_reply(rec: OrderRecord, command: CommandRecord | None) -> Reply:
    """A queued command's id, or ``TooLate`` when the order was already finished."""
    if command is None:
        return Reply(
            200,
            CommandResult(failureReason="TooLate", failureText=f"Order is {rec.order.ordStatus}"),
        )
    return Reply(200, CommandResult(commandId=command.command.id))


def _cancel_order(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body, CancelOrderBody)
    rec = venue.owned_order(session, request.orderId)
    if rec is None:
        return venue.denied()
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    command = venue.engine.cancel(rec, origin, request.clOrdId)
    return _command_reply(rec, command)


def _modify_order(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body, ModifyOrderBody)
    rec = venue.owned_order(session, request.orderId)
    if rec is None:
        return venue.denied()
    failure = _price_failure(
        rec.info,
        request.orderType,
        rec.order.action,
        request.price,
        request.stopPrice,
        request.pegDifference,
        request.timeInForce,
    )
    if failure is None and request.orderQty <= 0:
        failure = ("UnknownReason", "Violation: orderQty must be positive")
    if failure is not None:
        return Reply(200, CommandResult(failureReason=failure[0], failureText=failure[1]))
    spec = OrderSpec(
        action=rec.order.action,
        order_type=request.orderType,
        qty=request.orderQty,
        price=request.price,
        stop_price=request.stopPrice,
        time_in_force=request.timeInForce,
        text=request.text,
        cl_ord_id=request.clOrdId,
        max_show=request.maxShow,
        peg_difference=request.pegDifference,
        expire_time=request.expireTime,
    )
    origin = venue.origin(session, request.isAutomated, request.customTag50, request.activationTime)
    command = venue.engine.modify(rec, spec, origin)
    return _command_reply(rec, command)


def _liquidate_position(venue: Venue, session: Session | None, _q: str, body: bytes | str) -> Reply:
    assert session is not None
    request = _decode(body, LiquidatePositionBody)
    book = venue.owned_book(session, request.accountId)
    if book is None:
        return venue.denied()
    info = venue.contracts.by_id(request.contractId)
    if info is None:
        return Reply(
            200,
            PlaceOrderResult(
                failureReason="InvalidContract",
                failureText=f"Unknown contract {request.contractId}",
            ),
        )
    origin = venue.origin(session, request.isAutomated, request.customTag50)
    closing, _canceled = venue.engine.liquidate(book, info, origin)
    if closing is None:
        return Reply(
            200,
            PlaceOrderResult(failureReason="UnknownReason", failureText="No position to liquidate"),
        )
    return Reply(200, PlaceOrderResult(orderId=closing.order.id))


# ---- generic entity endpoints: list, item, items, deps, ldeps


def _children(venue: Venue, session: Session, entity_type: str, master: int) -> list[Any]:
    """Entities of a type that depend on a master id (foreign or unknown masters: none)."""
    state = venue.state
    uid = session.user_id
    if entity_type == "account":
        return (
            [state.accounts[a] for a in venue.user_of(session).account_ids] if master == uid else []
        )
    if entity_type in ("order", "position", "cashBalance"):
        book = venue.owned_book(session, master)
        if book is None:
            return []
        if entity_type == "order":
            return [rec.order for rec in book.orders.values()]
        if entity_type == "position":
            return list(book.positions.values())
        return [book.cash]
    if entity_type in ("fill", "orderVersion", "command"):
        rec = venue.owned_order(session, master)
        if rec is None:
            return []
        if entity_type == "fill":
            return list(rec.fills)
        if entity_type == "orderVersion":
            return list(rec.versions)
        return [crec.command for crec in rec.commands]
    crec = state.commands.get(master)
    if crec is None or state.accounts[crec.account_id].userId != uid:
        return []
    return list(crec.reports) if entity_type == "commandReport" else list(crec.executions)


_MASTER_OF = {
    "account": "user",
    "order": "account",
    "position": "account",
    "cashBalance": "account",
    "fill": "order",
    "orderVersion": "order",
    "command": "order",
    "commandReport": "command",
    "executionReport": "command",
}


def _all_of(venue: Venue, session: Session, entity_type: str) -> list[Any]:
    user = venue.user_of(session)
    if entity_type == "account":
        return _children(venue, session, "account", session.user_id)
    found: list[Any] = []
    for account_id in user.account_ids:
        if _MASTER_OF[entity_type] == "account":
            found.extend(_children(venue, session, entity_type, account_id))
            continue
        book = venue.state.books[account_id]
        for rec in book.orders.values():
            if _MASTER_OF[entity_type] == "order":
                found.extend(_children(venue, session, entity_type, rec.order.id))
            else:
                for crec in rec.commands:
                    found.extend(_children(venue, session, entity_type, crec.command.id))
    return found


def _visible(venue: Venue, session: Session, entity_type: str, entity_id: int) -> Entity | None:
    found = venue.state.entities.get(entity_id)
    if found is None or found[0] != entity_type:
        return None
    account = venue.state.accounts.get(found[2])
    if account is None or account.userId != session.user_id:
        return None
    return found[1]


def _entity_routes(entity_type: str) -> dict[str, tuple[Handler, bool]]:
    def list_(venue: Venue, session: Session | None, _q: str, _b: bytes | str) -> Reply:
        assert session is not None
        return Reply(200, _all_of(venue, session, entity_type))

    def item(venue: Venue, session: Session | None, query: str, _b: bytes | str) -> Reply:
        assert session is not None
        entity_id = _int_param(query, "id")
        entity = _visible(venue, session, entity_type, entity_id) if entity_id else None
        return Reply(200, entity) if entity is not None else Reply(404, '"Not found"')

    def items(venue: Venue, session: Session | None, query: str, _b: bytes | str) -> Reply:
        assert session is not None
        found = [_visible(venue, session, entity_type, i) for i in _ids_param(query, "ids")]
        return Reply(200, [e for e in found if e is not None])

    def deps(venue: Venue, session: Session | None, query: str, _b: bytes | str) -> Reply:
        assert session is not None
        master = _int_param(query, "masterid")
        return Reply(200, _children(venue, session, entity_type, master) if master else [])

    def ldeps(venue: Venue, session: Session | None, query: str, _b: bytes | str) -> Reply:
        assert session is not None
        found: list[Any] = []
        for master in _ids_param(query, "masterids"):
            found.extend(_children(venue, session, entity_type, master))
        return Reply(200, found)

    base = entity_type.lower()
    routes: dict[str, tuple[Handler, bool]] = {
        f"{base}/list": (list_, False),
        f"{base}/item": (item, False),
        f"{base}/items": (items, False),
        f"{base}/deps": (deps, False),
        f"{base}/ldeps": (ldeps, False),
    }
    if entity_type == "account":

        def find(venue: Venue, session: Session | None, query: str, _b: bytes | str) -> Reply:
            assert session is not None
            account = venue.state.accounts_by_name.get(_query(query).get("name", ""))
            if account is None or account.userId != session.user_id:
                return Reply(404, '"Not found"')
            return Reply(200, account)

        routes["account/find"] = (find, False)
    return routes


# ---- reference data: contract, product, contractMaturity


def _contract_find(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    info = venue.contracts.resolve(_query(query).get("name", ""))
    return Reply(200, info.contract) if info is not None else Reply(404, '"Not found"')


def _contract_item(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    cid = _int_param(query, "id")
    info = venue.contracts.by_id(cid) if cid is not None else None
    return Reply(200, info.contract) if info is not None else Reply(404, '"Not found"')


def _contract_items(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    infos = [venue.contracts.by_id(i) for i in _ids_param(query, "ids")]
    return Reply(200, [i.contract for i in infos if i is not None])


def _contract_suggest(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    params = _query(query)
    text = params.get("t", "")
    limit = int(params.get("l", "10")) if params.get("l", "10").isdigit() else 10
    resolved = venue.contracts.resolve(text)
    found = [resolved.contract] if resolved is not None else []
    found += [c for c in venue.contracts.suggest(text, limit) if c not in found]
    return Reply(200, found[:limit])


def _product_find(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    product = venue.contracts.product(_query(query).get("name", ""))
    return Reply(200, product) if product is not None else Reply(404, '"Not found"')


def _maturity_item(venue: Venue, _s: Session | None, query: str, _b: bytes | str) -> Reply:
    mid = _int_param(query, "id")
    for info in venue.contracts.known():
        if info.maturity.id == mid:
            return Reply(200, info.maturity)
    return Reply(404, '"Not found"')


def _build_routes() -> dict[str, tuple[Handler, bool]]:
    routes: dict[str, tuple[Handler, bool]] = {
        "auth/accesstokenrequest": (_access_token_request, True),
        "auth/renewaccesstoken": (_renew_access_token, False),
        "auth/me": (_me, False),
        "user/syncrequest": (_sync_request, False),
        "order/placeorder": (_place_order, False),
        "order/placeoso": (_place_oso, False),
        "order/cancelorder": (_cancel_order, False),
        "order/modifyorder": (_modify_order, False),
        "order/liquidateposition": (_liquidate_position, False),
        "contract/find": (_contract_find, False),
        "contract/item": (_contract_item, False),
        "contract/items": (_contract_items, False),
        "contract/suggest": (_contract_suggest, False),
        "product/find": (_product_find, False),
        "contractmaturity/item": (_maturity_item, False),
    }
    for entity_type in _MASTER_OF:
        routes.update(_entity_routes(entity_type))
    return routes
