"""Secret rotation, sender restrictions behind proxies, signatures, rate limits and timeouts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import TRADINGVIEW_SENDER_IPS, IngestSettings
from phalanx_ingest.signatures import sign

pytestmark = pytest.mark.integration

TOKEN = "security-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SIGNAL = {"ticker": "MNQ1!", "action": "buy"}
PROXY_HOPS = "203.0.113.9, 198.51.100.7"  # client-written junk, then what the proxy saw


@pytest_asyncio.fixture
async def service(nats_url: str, tmp_path: Path) -> AsyncIterator[IngestService]:
    """Ingest behind a trusted proxy on 127.0.0.1 (the test client), with a short body timeout."""
    built = await build_ingest(
        IngestSettings(
            nats_url=nats_url,
            ingest_port=0,
            admin_token=TOKEN,
            ingest_outbox_dir=str(tmp_path / "outbox"),
            trusted_proxies=("127.0.0.1/32",),
            body_timeout_s=0.3,
        )
    )
    await built.start()
    try:
        yield built
    finally:
        await built.stop()


@pytest_asyncio.fixture
async def http(service: IngestService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=10.0) as client:
        yield client


async def _create(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post("/admin/strategies", json={"name": "s", **fields}, headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _hook(created: dict[str, Any], secret: str | None = None) -> str:
    return f"/webhooks/{created['strategy_id']}/{secret or created['secret']}"


async def test_rotation_keeps_the_old_secret_valid_for_the_grace_period(
    http: httpx.AsyncClient,
) -> None:
    created = await _create(http)
    rotated = await http.post(
        f"/admin/strategies/{created['strategy_id']}/secret:rotate",
        json={"grace_s": 3600},
        headers=ADMIN,
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["secret"] != created["secret"]
    assert urlsplit(new["webhook_url"]).path == _hook(created, new["secret"])

    old_ok = await http.post(_hook(created), json={**SIGNAL, "time": "1"})
    new_ok = await http.post(_hook(created, new["secret"]), json={**SIGNAL, "time": "2"})
    assert old_ok.status_code == new_ok.status_code == 200

    # Rotating again with no grace: only the newest secret works.
    again = await http.post(
        f"/admin/strategies/{created['strategy_id']}/secret:rotate",
        json={"grace_s": 0},
        headers=ADMIN,
    )
    newest = again.json()["secret"]
    for stale in (created["secret"], new["secret"]):
        refused = await http.post(_hook(created, stale), json={**SIGNAL, "time": "3"})
        assert refused.status_code == 403
        assert refused.json()["messageCode"] == "invalid-password"
    assert (
        await http.post(_hook(created, newest), json={**SIGNAL, "time": "4"})
    ).status_code == 200
    view = await http.get(f"/admin/strategies/{created['strategy_id']}", headers=ADMIN)
    assert newest not in view.text


async def test_tradingview_only_accepts_its_addresses_through_a_trusted_proxy(
    http: httpx.AsyncClient,
) -> None:
    created = await _create(http, tradingview_only=True)

    direct = await http.post(_hook(created), json=SIGNAL)
    spoofed = await http.post(
        _hook(created),
        json=SIGNAL,
        headers={"X-Forwarded-For": f"{TRADINGVIEW_SENDER_IPS[0]}, 198.51.100.7"},
    )
    forwarded = await http.post(
        _hook(created), json=SIGNAL, headers={"X-Forwarded-For": TRADINGVIEW_SENDER_IPS[2]}
    )

    assert direct.status_code == 403
    assert direct.json()["messageCode"] == "not-trading-view"
    # The right-most hop is what the proxy saw; a left-most TradingView address is client junk.
    assert spoofed.status_code == 403
    assert spoofed.json()["messageCode"] == "not-trading-view"
    assert forwarded.status_code == 200, forwarded.text


async def test_ip_allowlist_uses_forwarded_for_only_from_trusted_proxies(
    http: httpx.AsyncClient, nats_url: str
) -> None:
    created = await _create(http, allowed_ips=["198.51.100.0/24"])

    allowed = await http.post(_hook(created), json=SIGNAL, headers={"X-Forwarded-For": PROXY_HOPS})
    other = await http.post(_hook(created), json=SIGNAL, headers={"X-Forwarded-For": "192.0.2.1"})
    assert allowed.status_code == 200, allowed.text
    assert other.status_code == 403
    assert other.json()["messageCode"] == "invalid-ip-address"

    # Without trusted proxies the header is ignored: the peer (127.0.0.1) is not allowed.
    async with _Untrusting(nats_url) as client:
        ignored = await client.post(
            _hook(created), json={**SIGNAL, "time": "x"}, headers={"X-Forwarded-For": PROXY_HOPS}
        )
    assert ignored.status_code == 403
    assert ignored.json()["messageCode"] == "invalid-ip-address"


class _Untrusting:
    """A second ingest on the same NATS with no trusted proxies, and a client for it."""

    def __init__(self, nats_url: str) -> None:
        self._nats_url = nats_url

    async def __aenter__(self) -> httpx.AsyncClient:
        self._service = await build_ingest(
            IngestSettings(nats_url=self._nats_url, ingest_port=0, admin_token=TOKEN)
        )
        await self._service.start()
        self._client = httpx.AsyncClient(base_url=self._service.url, timeout=10.0)
        return self._client

    async def __aexit__(self, *_: object) -> None:
        await self._client.aclose()
        await self._service.stop()


async def test_bad_allowlist_entries_are_refused_by_the_admin_api(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        "/admin/strategies", json={"name": "s", "allowed_ips": ["10.0.0.0/8", "ten"]}, headers=ADMIN
    )
    created = await _create(http)
    patched = await http.patch(
        f"/admin/strategies/{created['strategy_id']}",
        json={"allowed_ips": ["1.2.3"]},
        headers=ADMIN,
    )

    assert response.status_code == 422
    assert response.json()["detail"]["messageCode"] == "invalid-ip-address-format"
    assert patched.status_code == 422
    assert patched.json()["detail"]["messageCode"] == "invalid-ip-address-format"


def _signed(key: str, body: bytes, msg_id: str, at: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if at is None else at
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1,bm90LXRoaXMtb25l " + sign(key, msg_id, timestamp, body),
        "Content-Type": "application/json",
    }


async def test_standard_webhooks_signatures(http: httpx.AsyncClient, bus: Bus) -> None:
    created = await _create(http, require_signature=True)
    hook = _hook(created)
    body = json.dumps(SIGNAL).encode()
    keyed = await http.post(
        f"/admin/strategies/{created['strategy_id']}/signing-secret:rotate", headers=ADMIN
    )
    key = keyed.json()["signing_secret"]
    assert key.startswith("whsec_")

    unsigned = await http.post(hook, content=body)
    good = await http.post(hook, content=body, headers=_signed(key, body, "msg_1"))
    replay = await http.post(hook, content=body, headers=_signed(key, body, "msg_1"))
    tampered = await http.post(hook, content=body + b" ", headers=_signed(key, body, "msg_2"))
    stale = await http.post(
        hook, content=body, headers=_signed(key, body, "msg_3", int(time.time()) - 3600)
    )
    partial = await http.post(hook, content=body, headers={"webhook-id": "msg_4"})

    assert unsigned.status_code == 403
    assert unsigned.json()["messageCode"] == "signature-required"
    assert good.status_code == 200, good.text
    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True  # the webhook-id is the seen-id
    assert tampered.status_code == 403
    assert tampered.json()["messageCode"] == "invalid-signature"
    assert stale.status_code == 403
    assert stale.json()["messageCode"] == "signature-expired"
    assert partial.json()["messageCode"] == "invalid-signature"
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    assert info.state.messages == 1

    # Rotating the key: the old one keeps working during the grace period.
    rotated = await http.post(
        f"/admin/strategies/{created['strategy_id']}/signing-secret:rotate",
        json={"grace_s": 600},
        headers=ADMIN,
    )
    new_key = rotated.json()["signing_secret"]
    old = await http.post(hook, content=body, headers=_signed(key, body, "msg_5"))
    new = await http.post(hook, content=body, headers=_signed(new_key, body, "msg_6"))
    assert old.status_code == new.status_code == 200


async def test_rate_limit_is_429_too_many_requests(http: httpx.AsyncClient) -> None:
    created = await _create(http, rate_limit_per_min=2)
    other = await _create(http)

    answers = [await http.post(_hook(created), json={**SIGNAL, "time": str(n)}) for n in range(3)]
    unaffected = await http.post(_hook(other), json=SIGNAL)
    wrong_secret = await http.post(_hook(created, "nope"), json=SIGNAL)

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["messageCode"] == "too-many-requests"
    assert int(answers[2].headers["retry-after"]) >= 1
    assert unaffected.status_code == 200
    assert wrong_secret.status_code == 403  # authentication first: no budget for strangers


async def test_a_body_that_never_arrives_is_408_request_timeout(
    service: IngestService, http: httpx.AsyncClient
) -> None:
    created = await _create(http)
    reader, writer = await asyncio.open_connection(service._http.host, service._http.port)
    try:
        writer.write(
            f"POST {_hook(created)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"ticker":'.encode()
        )
        await writer.drain()
        status_line = await reader.readline()
        head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    assert b" 408 " in status_line
    assert b"request-timeout" in await _rest(reader, head)


async def _rest(reader: asyncio.StreamReader, head: bytes) -> bytes:
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)
