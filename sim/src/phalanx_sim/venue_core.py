"""The venue's session core: users, accounts, tokens and server sessions, prices, ownership.

:class:`VenueCore` holds the state, the contracts and the matching engine, and answers the
questions every endpoint asks (whose account is this, which session sent it, how a foreign
account is refused). :class:`~phalanx_sim.venue.Venue` adds admission (faults, limits) and the
route table on top; the endpoint modules take a :class:`VenueCore`, so they never import the
dispatcher.
"""

# ruff: noqa: N815

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from phalanx_sim.contracts import ContractBook, ContractInfo, on_tick
from phalanx_sim.entities import Account, CashBalance, User
from phalanx_sim.matching import EventSink, MatchingEngine, NullSink, OrderSpec, Origin
from phalanx_sim.replies import ACCESS_DENIED, Reply
from phalanx_sim.retention import RetentionPolicy
from phalanx_sim.schemas import Bracket, PlaceOrderBody, PlaceOrderResult
from phalanx_sim.settings import SimSettings
from phalanx_sim.state import (
    AccountBook,
    OrderRecord,
    RequestRecord,
    Session,
    SimState,
    UserRecord,
)
from phalanx_sim.times import VenueClock

__all__ = ["CreatedUser", "VenueCore"]


class CreatedUser(msgspec.Struct, kw_only=True):
    """A user created by the admin API or the seed: its id, name and accounts."""

    userId: int
    name: str
    accounts: list[dict[str, Any]]


class VenueCore:
    """Users, sessions, prices and ownership: what every endpoint needs from the venue."""

    def __init__(self, settings: SimSettings | None = None, clock: VenueClock | None = None):
        self.settings = settings or SimSettings()
        self.clock = clock or VenueClock()
        self.contracts = ContractBook()
        self._sink: EventSink = NullSink()
        self.state = SimState(self.settings.sim_request_log_max)
        self.engine = self._new_engine()
        self.market_open = not self.settings.sim_session_closed
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
        self.max_position.clear()
        self.market_open = not self.settings.sim_session_closed
        self.engine = self._new_engine()

    def _new_engine(self) -> MatchingEngine:
        retention = RetentionPolicy(
            max_age_s=self.settings.sim_finished_order_retention_s,
            max_orders=self.settings.sim_finished_orders_max,
            min_age_s=self.settings.sim_finished_order_min_retention_s,
        )
        return MatchingEngine(self.state, self.clock, self._sink, retention)

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
            state.register(account)
            state.register(cash)
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

    # ------------------------------------------------------------------ sessions

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
                    self._forget_tokens(old_tokens)
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
        self._forget_tokens([t for t in tokens if t.expires_at <= now])
        tokens[:] = [t for t in tokens if t.expires_at > now]
        tokens.append(session)
        return session

    def _forget_tokens(self, tokens: Iterable[Session]) -> None:
        """Drop tokens that can no longer be used from the token index (401 either way)."""
        for token in tokens:
            self.state.sessions.pop(token.token, None)

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
