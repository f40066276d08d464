"""The REST client never reuses a connection its server may be closing as idle.

Both sides of a keep-alive connection keep an idle timer. When the client's is not shorter than
the server's, a request can go out on a connection the server closes at that very moment; it
fails mid-request, and a request that is not idempotent (``accesstokenrequest``) cannot be sent
again. The server here stages that moment exactly: it answers on a fresh connection, and on a
connection idle longer than its own timeout it closes instead of answering, as a server whose
close crossed the request would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from phalanx_common.http_limits import HttpLimits
from phalanx_tradovate import wire
from phalanx_tradovate.rest import KEEPALIVE_EXPIRY_S, TradovateRest

_SERVER_IDLE_S = KEEPALIVE_EXPIRY_S + 0.5
_BODY = b'{"accessToken":"t","expirationTime":"2030-01-01T00:00:00Z","userId":1}'
_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    answered_at: float | None = None
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if answered_at is not None and loop.time() - answered_at > _SERVER_IDLE_S:
                return  # closed as idle just as this request came in
            writer.write(_ANSWER)
            await writer.drain()
            answered_at = loop.time()
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        writer.close()


@pytest.fixture
async def venue_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_request_after_an_idle_spell_goes_on_a_new_connection(venue_url: str) -> None:
    rest = TradovateRest(venue_url, timeout_s=5)
    login = wire.AccessTokenRequest(name="u", password="p")
    try:
        await rest.access_token_request(login)
        await asyncio.sleep(_SERVER_IDLE_S + 0.3)  # idle longer than the server keeps it

        answer = await rest.access_token_request(login)
    finally:
        await rest.aclose()

    assert answer.accessToken == "t"


def test_the_client_lets_connections_go_before_phalanx_servers_close_them() -> None:
    assert HttpLimits().keep_alive_s > KEEPALIVE_EXPIRY_S
