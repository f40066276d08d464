"""Tradovate REST client over httpx.

Every call returns a typed wire struct or raises a typed :mod:`phalanx_tradovate.errors` error;
the failure shapes (``errorText`` in a 200, ``failureReason``, ``p-ticket``, 401, 423/429, 5xx)
are checked in :mod:`phalanx_tradovate.checks`. Only :meth:`TradovateRest.access_token_request`
honours a penalty ticket by itself (once); for everything else the caller's rate limiter owns the
wait and resends with ``p_ticket=`` (ADR-0004, docs/tradovate-protocol.md §5).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from phalanx_tradovate import wire
from phalanx_tradovate.checks import is_read, raise_for_payload, raise_for_status
from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    PenaltyError,
    ProtocolError,
    RequestTimeout,
    VenueUnreachable,
)

__all__ = ["KEEPALIVE_EXPIRY_S", "Sleep", "TradovateRest", "find_command"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def find_command(commands: Iterable[wire.Command], cl_ord_id: str) -> wire.Command | None:
    """The first command carrying ``clOrdId`` (e.g. from a sync snapshot or props events)."""
    for command in commands:
        if command.clOrdId == cl_ord_id:
            return command
    return None


async def _find_command(
    orders: Sequence[wire.Order],
    cl_ord_id: str,
    chunk: int,
    fetch: Callable[[list[int]], Awaitable[list[wire.Command]]],
) -> tuple[wire.Order, wire.Command] | None:
    by_id = {o.id: o for o in orders}
    newest_first = sorted(by_id, reverse=True)
    for start in range(0, len(newest_first), max(1, chunk)):
        ids = newest_first[start : start + max(1, chunk)]
        command = find_command(await fetch(ids), cl_ord_id)
        if command is not None and command.orderId in by_id:
            return by_id[command.orderId], command
    return None


#: How long an idle pooled connection is reused. Below the idle timeout of the servers it talks
#: to (the simulator's and every Phalanx HTTP server's 5 s; load balancers' 60 s): with equal
#: timers, a request sent on a connection the server is closing at that moment fails
#: mid-request, and a non-idempotent request such as ``accesstokenrequest`` cannot be retried.
KEEPALIVE_EXPIRY_S = 2.0


class TradovateRest:
    """A REST client for one Tradovate environment (``https://demo.tradovateapi.com/v1``).

    Args:
        base_url: the REST base including ``/v1``.
        client: an ``httpx.AsyncClient`` to use (owned by the caller); one is created otherwise.
        timeout_s: per-request timeout.
        sleep: how to wait out a penalty on ``accesstokenrequest`` (inject a fake in tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout_s,
            limits=httpx.Limits(  # httpx's default pool, with a shorter idle reuse
                max_connections=100,
                max_keepalive_connections=20,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        )
        self._timeout_s = timeout_s
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (idempotent)."""
        if self._own_client:
            await self._client.aclose()

    # -- plumbing -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        endpoint: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Any:
        headers = dict(_JSON_HEADERS)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        read = is_read(endpoint) or method == "GET"
        try:
            resp = await self._client.request(
                method,
                f"{self.base_url}/{endpoint}",
                content=body,
                params=params,
                headers=headers,
                timeout=self._timeout_s,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise VenueUnreachable(f"cannot connect: {exc!r}", endpoint=endpoint) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeout(
                f"no answer within {self._timeout_s:g}s", endpoint=endpoint, retry_safe=read
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(
                f"connection failed mid-request: {exc!r}", endpoint=endpoint, retry_safe=read
            ) from exc
        data: Any
        if resp.content:
            try:
                data = wire.decode_json(resp.content)
            except msgspec.DecodeError:
                data = resp.text
        else:
            data = None
        raise_for_status(endpoint, resp.status_code, data)
        raise_for_payload(endpoint, data)
        return data

    @staticmethod
    def _convert(endpoint: str, data: Any, type_: type[T]) -> T:
        try:
            return wire.convert(data, type_)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"unexpected answer: {exc}", endpoint=endpoint) from exc

    async def _post(
        self,
        endpoint: str,
        token: str | None,
        body: msgspec.Struct | dict[str, Any],
        type_: type[T],
        p_ticket: str | None = None,
    ) -> T:
        data = await self._call(
            "POST", endpoint, token=token, body=wire.encode_with_ticket(body, p_ticket)
        )
        return self._convert(endpoint, data, type_)

    async def _get(
        self,
        endpoint: str,
        token: str,
        type_: type[T],
        params: dict[str, str | int] | None = None,
    ) -> T:
        data = await self._call("GET", endpoint, token=token, params=params)
        return self._convert(endpoint, data, type_)

    # -- auth ---------------------------------------------------------------------------------

    async def access_token_request(self, req: wire.AccessTokenRequest) -> wire.AccessTokenResponse:
        """Log in with username/password (``POST /auth/accesstokenrequest``).

        This starts a new venue session (2 per user at most): call it once per login, then renew.
        A time penalty is honoured once: wait ``p-time`` and resend the same body plus the ticket.

        Raises:
            AuthError: wrong credentials (``errorText``) or 401.
            PenaltyError: ``p-captcha`` (immediately), or a second penalty after the retry.
            LockoutError, VenueError, VenueUnreachable, RequestTimeout: as their names say.
        """
        endpoint = "auth/accesstokenrequest"
        try:
            return await self._post(endpoint, None, req, wire.AccessTokenResponse)
        except PenaltyError as exc:
            if exc.captcha:
                raise
            log.warning("%s: time penalty, retrying once after %.1fs", endpoint, exc.time_s)
            await self._sleep(exc.time_s)
            return await self._post(
                endpoint, None, req, wire.AccessTokenResponse, p_ticket=exc.ticket
            )

    async def oauth_token(
        self,
        req: wire.OAuthTokenRequest,
        *,
        path: str = "/auth/oauthtoken",
        encoding: str = "form",
    ) -> wire.OAuthTokenResponse:
        """Exchange an OAuth authorization code for an access token.

        Tradovate's docs disagree on the address and the encoding (docs/tradovate-protocol.md
        §2.4, §7.10): the official example posts a **form** to ``/auth/oauthtoken`` on the API
        host **without** ``/v1``; the swagger lists ``/v1/auth/oauthtoken`` with a JSON body.
        ``path`` is taken from the host root of ``base_url`` (pass ``"/v1/auth/oauthtoken"`` for
        the other one, or an absolute ``https://...`` URL); ``encoding`` is ``"form"`` or
        ``"json"``.

        The token then works like an ``accesstokenrequest`` token (renew it with
        :meth:`renew_access_token`; find the user with :meth:`me`).

        Raises:
            AuthError: ``error``/``error_description`` in the answer (any status), or 401.
            LockoutError, VenueError, VenueUnreachable, RequestTimeout: as their names say.
        """
        if encoding not in ("form", "json"):
            raise ValueError("encoding must be 'form' or 'json'")
        fields = {
            name: value for name, value in msgspec.structs.asdict(req).items() if value is not None
        }
        url = path if "://" in path else _origin(self.base_url) + "/" + path.lstrip("/")
        endpoint = "auth/oauthtoken"
        try:
            if encoding == "form":
                resp = await self._client.post(
                    url,
                    data=fields,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout_s,
                )
            else:
                resp = await self._client.post(
                    url,
                    content=wire.encode(fields),
                    headers=_JSON_HEADERS,
                    timeout=self._timeout_s,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise VenueUnreachable(f"cannot connect: {exc!r}", endpoint=endpoint) from exc
        except httpx.TimeoutException as exc:
            raise RequestTimeout(
                f"no answer within {self._timeout_s:g}s", endpoint=endpoint
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(f"connection failed: {exc!r}", endpoint=endpoint) from exc
        try:
            data: Any = wire.decode_json(resp.content) if resp.content else None
        except msgspec.DecodeError:
            data = resp.text
        if isinstance(data, dict) and data.get("error"):
            text = f"{data['error']}: {data.get('error_description') or ''}".rstrip(": ")
            raise AuthError(text, endpoint=endpoint, status=resp.status_code)
        raise_for_status(endpoint, resp.status_code, data)
        raise_for_payload(endpoint, data)
        result = self._convert(endpoint, data, wire.OAuthTokenResponse)
        if not result.access_token:
            raise ProtocolError("no access_token in the answer", endpoint=endpoint)
        return result

    async def renew_access_token(self, token: str) -> wire.AccessTokenResponse:
        """Extend the session with a new token (``GET /auth/renewaccesstoken``).

        Raises:
            AuthError: the token is expired or revoked (401) or ``errorText`` was returned.
        """
        return await self._get("auth/renewaccesstoken", token, wire.AccessTokenResponse)

    async def me(self, token: str) -> wire.MeResponse:
        """Who the token belongs to (``GET /auth/me``)."""
        return await self._get("auth/me", token, wire.MeResponse)

    # -- reads --------------------------------------------------------------------------------

    async def account_list(self, token: str) -> list[wire.Account]:
        """Every account the login can see (``GET /account/list``)."""
        return await self._get("account/list", token, list[wire.Account])

    async def order_deps(self, token: str, account_id: int) -> list[wire.Order]:
        """Orders of one account (``GET /order/deps?masterid=<accountId>``)."""
        return await self._get("order/deps", token, list[wire.Order], {"masterid": account_id})

    async def position_deps(self, token: str, account_id: int) -> list[wire.Position]:
        """Positions of one account (``GET /position/deps?masterid=<accountId>``)."""
        return await self._get(
            "position/deps", token, list[wire.Position], {"masterid": account_id}
        )

    async def order_version_deps(self, token: str, order_id: int) -> list[wire.OrderVersion]:
        """Versions of one order: type, prices, peg, time in force (``orderVersion/deps``)."""
        return await self._get(
            "orderVersion/deps", token, list[wire.OrderVersion], {"masterid": order_id}
        )

    async def command_deps(self, token: str, order_id: int) -> list[wire.Command]:
        """Commands of one order, with their ``clOrdId`` (``GET /command/deps?masterid=``)."""
        return await self._get("command/deps", token, list[wire.Command], {"masterid": order_id})

    async def command_ldeps(self, token: str, order_ids: Iterable[int]) -> list[wire.Command]:
        """Commands of several orders in one call (``GET /command/ldeps?masterids=a,b``)."""
        ids = ",".join(str(i) for i in order_ids)
        if not ids:
            return []
        return await self._get("command/ldeps", token, list[wire.Command], {"masterids": ids})

    async def fill_ldeps(self, token: str, order_ids: Iterable[int]) -> list[wire.Fill]:
        """Fills of several orders in one call (``GET /fill/ldeps?masterids=a,b``)."""
        ids = ",".join(str(i) for i in order_ids)
        if not ids:
            return []
        return await self._get("fill/ldeps", token, list[wire.Fill], {"masterids": ids})

    async def fill_fee_ldeps(self, token: str, fill_ids: Iterable[int]) -> list[wire.FillFee]:
        """Fees of several fills in one call (``GET /fillFee/ldeps?masterids=a,b``)."""
        ids = ",".join(str(i) for i in fill_ids)
        if not ids:
            return []
        return await self._get("fillFee/ldeps", token, list[wire.FillFee], {"masterids": ids})

    async def find_by_cl_ord_id(
        self, token: str, account_id: int, cl_ord_id: str, *, chunk: int = 100
    ) -> tuple[wire.Order, wire.Command] | None:
        """Find the order one account placed with ``clOrdId`` (the "unknown outcome" lookup).

        ``order/deps?masterid=<accountId>`` (only that account's orders), then the commands of
        those orders by ``command/ldeps`` (``chunk`` orders per call, newest first), matching
        ``Command.clOrdId``. A few requests, so it counts toward the login's budget: call it
        after a timeout or dropped connection, before deciding to place the order again.

        Returns:
            ``(order, command)`` of the match, or ``None`` when the account has no such order
            (then, and only then, placing it again cannot duplicate it).
        """
        orders = [o for o in await self.order_deps(token, account_id) if o.accountId == account_id]
        return await _find_command(
            orders, cl_ord_id, chunk, lambda ids: self.command_ldeps(token, ids)
        )

    async def contract_item(self, token: str, id: int) -> wire.Contract:
        """One contract by id (``GET /contract/item?id=``)."""
        return await self._get("contract/item", token, wire.Contract, {"id": id})

    async def contract_find(self, token: str, name: str) -> wire.Contract:
        """One contract by name, e.g. ``MNQZ5`` (``GET /contract/find?name=``)."""
        return await self._get("contract/find", token, wire.Contract, {"name": name})

    # -- orders -------------------------------------------------------------------------------

    async def place_oso(
        self, token: str, order: wire.PlaceOso, *, p_ticket: str | None = None
    ) -> wire.PlaceOsoResult:
        """Place an entry with its bracket legs (``POST /order/placeoso``).

        Raises:
            OrderRejected: ``failureReason`` set (retry-safe: nothing was placed).
            PenaltyError: resend with ``p_ticket=exc.ticket`` after ``exc.time_s``.
            RequestTimeout, ConnectionLost: outcome unknown; reconcile by ``clOrdId`` first.
        """
        return await self._post("order/placeoso", token, order, wire.PlaceOsoResult, p_ticket)

    async def place_order(
        self, token: str, order: wire.PlaceOrder, *, p_ticket: str | None = None
    ) -> wire.PlaceOrderResult:
        """Place a single order (``POST /order/placeorder``); errors as :meth:`place_oso`."""
        return await self._post("order/placeorder", token, order, wire.PlaceOrderResult, p_ticket)

    async def cancel_order(
        self, token: str, cancel: wire.CancelOrder, *, p_ticket: str | None = None
    ) -> wire.CommandResult:
        """Cancel an order (``POST /order/cancelorder``); the result means queued, not applied."""
        return await self._post("order/cancelorder", token, cancel, wire.CommandResult, p_ticket)

    async def modify_order(
        self, token: str, modify: wire.ModifyOrder, *, p_ticket: str | None = None
    ) -> wire.CommandResult:
        """Change a working order (``POST /order/modifyorder``); queued, not yet applied.

        Raises:
            OrderRejected: e.g. ``TooLate`` (the order is no longer working), ``InvalidPrice``.
        """
        return await self._post("order/modifyorder", token, modify, wire.CommandResult, p_ticket)

    async def liquidate_position(
        self, token: str, req: wire.LiquidatePosition, *, p_ticket: str | None = None
    ) -> wire.PlaceOrderResult:
        """Cancel a contract's orders and close its position (``/order/liquidateposition``)."""
        return await self._post(
            "order/liquidateposition", token, req, wire.PlaceOrderResult, p_ticket
        )
