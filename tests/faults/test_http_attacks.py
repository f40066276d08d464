"""Bad input and hostile clients against every HTTP service, run as processes (ADR-0115, 0116).

One system for the module (production mode, ``rig_sec``), seeded with one login, two accounts
and a strategy. Routes are taken from each service's OpenAPI document (plus the account page's,
which it hides), so a route added later is attacked too.

- an unauthenticated admin request that sends its headers and withholds its body is answered
  401 at once: the body is never waited for;
- an empty bearer token never passes, on any admin route;
- a declared body over ``PHALANX_MAX_REQUEST_BYTES`` is 413 on every route of every service,
  without the body being sent; a streamed (chunked) one is cut off at the limit with 413;
- deeply nested JSON is a 4xx on every JSON route (400 on the webhook), never a 5xx;
- idle, slow-header and slow-body connections to ingest do not starve webhooks: while they are
  open a normal webhook is answered 2xx and trades both accounts; the server closes the idle
  and slow-header ones itself (``PHALANX_HTTP_HEAD_TIMEOUT_S``) and answers the slow bodies 408.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_bench.seed import SeededStrategy, front_month, seed
from phalanx_testing.otlp import otlp_receiver
from phalanx_testing.waiting import eventually

sys.path.insert(0, str(Path(__file__).parent))
from tests.faults.rig_sec import SecureRig, secure_system

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_REQUEST_BYTES = 256 * 1024
HEAD_TIMEOUT_S = 1.0
NESTING = 10_000  # deeper than any parser's recursion limit, and under 64 KiB
EXTRAS_NESTING = 100  # parses, but deeper than a signal may be
IDLE_CONNECTIONS = 150
SLOW_HEAD_CONNECTIONS = 50
SLOW_BODY_CONNECTIONS = 20


@pytest.fixture(scope="module")
def rig() -> Iterator[SecureRig]:
    with (
        otlp_receiver() as receiver,
        secure_system(
            receiver,
            extra_env={
                "PHALANX_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
                "PHALANX_HTTP_HEAD_TIMEOUT_S": str(HEAD_TIMEOUT_S),
            },
        ) as running,
    ):
        yield running


@pytest_asyncio.fixture(loop_scope="function")
async def seeded(rig: SecureRig) -> AsyncIterator[SeededStrategy]:
    if rig.seeded is None:
        rig.seeded = await seed(rig.system.endpoints, logins=1, accounts_per_login=2)
    yield rig.seeded


def _services(rig: SecureRig) -> dict[str, str]:
    endpoints = rig.system.endpoints
    return {
        "ingest": endpoints.ingest,
        "auth": endpoints.auth,
        "executor": rig.system.executor_url(0),
        "ledger": endpoints.ledger,
    }


def _routes(base: str) -> list[tuple[str, str, bool]]:
    """``(method, path, takes a JSON body)`` of every route in the service's OpenAPI document,
    path parameters filled in."""
    spec = httpx.get(base + "/openapi.json", timeout=10).json()
    routes = []
    for path, operations in spec["paths"].items():
        concrete = path
        for name in ("strategy_id", "account_id", "login_id", "signal_id", "scope", "secret"):
            concrete = concrete.replace("{" + name + "}", "1" if name == "account_id" else "x")
        for method, operation in operations.items():
            routes.append((method.upper(), concrete, "requestBody" in operation))
    return routes


def _raw_request(base: str, head: bytes, body: bytes = b"", timeout_s: float = 10) -> bytes:
    """Send ``head`` (and ``body``) on a fresh connection; return what arrives until the server
    answers a whole head, closes, or ``timeout_s`` passes (then the client gives up)."""
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.sendall(head + body)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
        return received


def _status(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 else 0


def _head(method: str, path: str, base: str, headers: dict[str, str]) -> bytes:
    host = urlsplit(base).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_an_unauthenticated_admin_request_is_refused_before_its_body(rig: SecureRig) -> None:
    refused = []
    for service, base in _services(rig).items():
        admin_routes = [
            r for r in _routes(base) if r[1].startswith("/admin") and r[0] in ("POST", "PUT")
        ]
        if service in ("ingest", "auth", "executor"):
            assert admin_routes, f"{service} lists no admin route with a body"
        for method, path, _ in admin_routes:
            for authorization in (None, "Bearer wrong-token", "Bearer ", "Bearer"):
                headers = {"Content-Type": "application/json", "Content-Length": "1000"}
                if authorization is not None:
                    headers["Authorization"] = authorization
                # the body never comes: only an answer that did not wait for it arrives
                answer = _raw_request(base, _head(method, path, base, headers), timeout_s=10)
                refused.append((service, method, path, authorization, _status(answer)))
    assert refused
    assert [r for r in refused if r[4] != 401] == []
    print(f"measured: {len(refused)} unauthenticated admin requests without a body: all 401")


def test_empty_tokens_never_pass_an_admin_route(rig: SecureRig) -> None:
    attempts = []
    for base in _services(rig).values():
        for method, path, _ in _routes(base):
            if not path.startswith("/admin"):
                continue
            for authorization in ("Bearer ", "Bearer", "bearer  ", "", "Basic Og=="):
                headers = {"Authorization": authorization, "Content-Length": "0"}
                answer = _raw_request(base, _head(method, path, base, headers))
                attempts.append((method, path, authorization, _status(answer)))
    auth = rig.system.endpoints.auth
    for basic in ("Og==", "YWRtaW46"):  # ":" and "admin:" (an empty password)
        for path in ("/ui", "/admin/logins"):
            headers = {"Authorization": f"Basic {basic}"}
            answer = _raw_request(auth, _head("GET", path, auth, headers))
            attempts.append(("GET", path, f"Basic {basic}", _status(answer)))
    assert len(attempts) > 40
    assert [a for a in attempts if a[3] != 401] == []
    print(f"measured: {len(attempts)} admin/page requests with empty tokens: all 401")


def test_a_body_over_the_limit_is_413_on_every_route_without_being_sent(rig: SecureRig) -> None:
    answers = []
    for service, base in _services(rig).items():
        routes = [(m, p) for m, p, _ in _routes(base)]
        if service == "auth":
            routes += [("GET", "/ui"), ("POST", "/ui/connect"), ("GET", "/oauth/callback")]
        assert routes
        for method, path in routes:
            headers = {
                **rig.admin,
                "Content-Type": "application/json",
                "Content-Length": str(MAX_REQUEST_BYTES + 1),
            }
            answer = _raw_request(base, _head(method, path, base, headers), timeout_s=10)
            answers.append((service, method, path, _status(answer)))
    assert len(answers) > 30
    assert [a for a in answers if a[3] != 413] == []
    print(f"measured: {len(answers)} routes of 4 services, body over the limit unsent: all 413")


def test_a_streamed_body_over_the_limit_is_cut_off_with_413(rig: SecureRig) -> None:
    """Chunked, so no length is declared: counted while it arrives, refused at the limit."""
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)) + b"0\r\n\r\n"
    targets = [
        (rig.system.endpoints.ingest, "POST", "/admin/strategies"),
        (rig.system.endpoints.auth, "POST", "/admin/logins"),
        (rig.system.executor_url(0), "PUT", "/admin/trading-state/global"),
    ]
    statuses = []
    for base, method, path in targets:
        headers = {**rig.admin, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        try:
            answer = _raw_request(base, _head(method, path, base, headers), body)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""  # the server answered and closed while the rest was still being sent
        statuses.append(_status(answer))
    assert statuses == [413, 413, 413]


async def test_deeply_nested_json_is_a_4xx_on_every_json_route(
    rig: SecureRig, seeded: SeededStrategy
) -> None:
    nested_array = b"[" * NESTING + b"]" * NESTING
    nested_object = b'{"a":' * NESTING + b"1" + b"}" * NESTING
    in_a_field = b'{"ticker":"MNQ1!","action":"buy","extras":' + nested_array + b"}"
    deep_extras = (
        b'{"ticker":"MNQ1!","action":"buy","extras":'
        + b'{"a":' * EXTRAS_NESTING
        + b"1"
        + b"}" * EXTRAS_NESTING
        + b"}"
    )
    answers: list[tuple[str, str, int, Any]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for base in _services(rig).values():
            for method, path, has_body in _routes(base):
                if not has_body:
                    continue
                for body in (nested_array, nested_object):
                    answer = await http.request(
                        method,
                        base + path,
                        content=body,
                        headers={**rig.admin, "Content-Type": "application/json"},
                    )
                    answers.append((method, path, answer.status_code, answer.text[:100]))
        for body in (nested_array, nested_object, in_a_field, deep_extras):
            answer = await http.post(seeded.webhook_url, content=body)
            answers.append(("POST", "webhook", answer.status_code, answer.text[:100]))
    assert len(answers) > 10
    assert [a for a in answers if not 400 <= a[2] < 500] == []
    assert [a for a in answers if a[1] == "webhook" and a[2] != 400] == []
    print(f"measured: {len(answers)} deeply nested bodies: {sorted({a[2] for a in answers})}")


async def _open(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(base)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await reader.read()


async def test_idle_and_slow_clients_do_not_starve_webhooks(
    rig: SecureRig, seeded: SeededStrategy
) -> None:
    system = rig.system
    ingest = system.endpoints.ingest
    webhook_path = urlsplit(seeded.webhook_url).path
    async with httpx.AsyncClient(timeout=15) as http:

        async def connected() -> bool:
            health = (await http.get(system.executor_url(0) + "/healthz")).json()
            return int(health["logins_connected"]) >= 1

        await eventually(connected, timeout=30, what="the login connected")
        price = {"symbol": front_month(), "price": 21000}
        (await http.post(system.endpoints.sim + "/admin/prices", json=price)).raise_for_status()

        idle = [await _open(ingest) for _ in range(IDLE_CONNECTIONS)]
        slow_head = [await _open(ingest) for _ in range(SLOW_HEAD_CONNECTIONS)]
        for _, writer in slow_head:
            writer.write(f"POST {webhook_path} HTTP/1.1\r\nHost: x\r\n".encode())
        slow_body = [await _open(ingest) for _ in range(SLOW_BODY_CONNECTIONS)]
        for _, writer in slow_body:
            headers = {"Content-Type": "application/json", "Content-Length": "200"}
            writer.write(_head("POST", webhook_path, ingest, headers) + b'{"ticker"')
        await asyncio.gather(*(w.drain() for _, w in slow_head + slow_body))

        # while all of them are open, a normal webhook is served and trades
        answer = await http.post(
            seeded.webhook_url, json={"ticker": "MNQ1!", "action": "buy", "quantity": 1}
        )
        assert answer.status_code == 200, answer.text

        async def traded() -> bool:
            books = [
                (
                    await http.get(
                        system.endpoints.sim + "/admin/orders", params={"accountId": account}
                    )
                ).json()
                for account in seeded.account_ids
            ]
            return all(len(book) == 1 for book in books)

        await eventually(traded, timeout=30, what="one order on each account")

        # the server ends the idle and slow-header connections itself, answers slow bodies 408
        ends = await asyncio.wait_for(
            asyncio.gather(*(_closed_by_server(r) for r, _ in idle + slow_head + slow_body)),
            timeout=30,
        )
        for _, writer in idle + slow_head + slow_body:
            writer.close()
        violations = (await http.get(system.endpoints.sim + "/admin/violations")).json()
    assert violations["count"] == 0
    quiet = ends[: IDLE_CONNECTIONS + SLOW_HEAD_CONNECTIONS]
    assert quiet == [b""] * len(quiet)
    slow_statuses = {_status(end) for end in ends[len(quiet) :]}
    assert slow_statuses == {408}
    print(
        f"measured: {len(quiet)} idle/slow-head connections closed by ingest, "
        f"{len(ends) - len(quiet)} slow bodies 408; the webhook 200, one order per account"
    )
