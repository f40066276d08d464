"""HttpServer's limits on a real socket (ADR-0115, 0116, 0119); the whole-system attacks are
in tests/faults/test_http_attacks.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import websockets
from fastapi import FastAPI, WebSocket
from pydantic import BaseModel

from phalanx_common.http import HttpServer
from phalanx_common.http_limits import HttpLimits, bearer_matches

HEAD_TIMEOUT_S = 0.3


class _Login(BaseModel):
    username: str
    password: str


@pytest_asyncio.fixture
async def server() -> AsyncIterator[HttpServer]:
    app = FastAPI()

    @app.post("/admin/logins")
    async def login(body: _Login) -> dict[str, str]:
        return {"username": body.username}

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            await ws.send_text(await ws.receive_text())

    running = HttpServer(
        app,
        "127.0.0.1",
        0,
        limits=HttpLimits(admin_token="t" * 24, head_timeout_s=HEAD_TIMEOUT_S),
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.parametrize(
    ("presented", "configured"),
    [("Bearer ", ""), ("Bearer", ""), ("", ""), ("Bearer x", ""), ("Basic x", "x"), (None, "")],
)
def test_an_empty_or_wrong_token_never_matches(presented: str | None, configured: str) -> None:
    assert not bearer_matches(presented, configured)


def test_the_right_token_matches() -> None:
    assert bearer_matches("Bearer abc", "abc")
    assert bearer_matches("bearer abc", "abc")


async def test_a_websocket_outlives_the_head_deadline(server: HttpServer) -> None:
    async with websockets.connect(server.url.replace("http", "ws") + "/ws") as ws:
        await asyncio.sleep(3 * HEAD_TIMEOUT_S)  # past the deadline of the upgrade's head
        await ws.send("still here")
        assert await ws.recv() == "still here"


async def test_a_connection_that_sends_no_head_is_closed(server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /admin/logins HTTP/1.1\r\nHost: x\r\n")  # never finished
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


async def test_a_validation_error_does_not_echo_the_body(server: HttpServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post(
            "/admin/logins",
            json={"password": "do-not-echo-me"},
            headers={"Authorization": "Bearer " + "t" * 24},
        )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "username"]
    assert "do-not-echo-me" not in answer.text
