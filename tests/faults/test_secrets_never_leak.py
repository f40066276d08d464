"""Secrets never appear in logs, events, traces, metrics or error bodies (ADR-0119).

The whole system runs as processes in production mode, with one NATS user per service and
traces exported to the test's receiver (``rig_sec``). A realistic run: a login
linked by API access and one by OAuth (the client secret is used in the code exchange), a
strategy whose webhook trades two accounts, requests with a wrong admin token, a wrong webhook
secret, malformed and invalid bodies (one carrying a venue password), a venue refusing a wrong
password, then the kill switch (cancel and flatten).

Then every output is scanned for every secret: each Phalanx process's log (at DEBUG) and the
NATS server's, every message (subject, headers, data) of every stream and KV bucket, every
exported span (the raw OTLP export, events and status included), each service's ``/metrics``
and every body the services answered. The secrets: the admin token, the token keys, the OAuth
client secret, the webhook secret, each NATS password, the venue access tokens (opened from the
TOKENS bucket) and the venue passwords. The simulator's own log is not Phalanx's (it is the
venue, which issued the tokens) and is not scanned.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from nats.js.errors import BadRequestError, NotFoundError

from phalanx_bench.seed import front_month, seed
from phalanx_common.crypto import key_ring_from_settings, token_decoder
from phalanx_testing.otlp import OtlpReceiver, otlp_receiver
from phalanx_testing.waiting import eventually

sys.path.insert(0, str(Path(__file__).parent))
from tests.faults.rig_sec import OAUTH_CLIENT_ID, SecureRig, secure_system

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def rig(receiver: OtlpReceiver) -> Iterator[SecureRig]:
    with secure_system(receiver) as running:
        yield running


async def _oauth_login(rig: SecureRig, http: httpx.AsyncClient) -> None:
    """Link a login by OAuth: start, consent at the simulator as a person, follow the callback."""
    endpoints = rig.system.endpoints
    redirect = endpoints.auth + "/oauth/callback"
    registered = await http.post(
        endpoints.sim + "/admin/oauth/clients",
        json={
            "client_id": OAUTH_CLIENT_ID,
            "client_secret": rig.oauth_client_secret,
            "redirect_uris": [redirect],
        },
    )
    assert registered.status_code < 300, registered.text
    user = await http.post(
        endpoints.sim + "/admin/users",
        json={"name": "oauth_person", "password": "oauth-person-pw-7Qx", "accounts": 1},
    )
    assert user.status_code < 300, user.text
    rig.found_secrets["venue password of the OAuth person"] = "oauth-person-pw-7Qx"
    started = await http.post(endpoints.auth + "/admin/oauth/start", json={}, headers=rig.admin)
    assert started.status_code == 200, started.text
    authorize_url = started.json()["authorize_url"]
    fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    fields.update(username="oauth_person", password="oauth-person-pw-7Qx")
    consent = await http.post(endpoints.sim + "/oauth", data=fields)
    assert consent.status_code == 302, consent.text
    callback = await http.get(consent.headers["location"])
    assert callback.status_code == 303, callback.text  # linked, back to the page


async def _bad_requests(
    rig: SecureRig, http: httpx.AsyncClient, webhook_url: str, venue_password: str
) -> list[httpx.Response]:
    endpoints = rig.system.endpoints
    wrong_admin = {"Authorization": "Bearer not-the-admin-token-at-all-0000"}
    wrong_secret_url = webhook_url.rsplit("/", 1)[0] + "/wrong-secret"
    answers = [
        await http.get(endpoints.ingest + "/admin/strategies", headers=wrong_admin),
        await http.get(endpoints.auth + "/admin/logins", headers=wrong_admin),
        await http.post(
            rig.system.executor_url(0) + "/admin/kill-switch", json={"reason": "x"}, headers={}
        ),
        await http.get(endpoints.auth + "/ui"),
        await http.post(wrong_secret_url, json={"ticker": "MNQ1!", "action": "buy"}),
        await http.post(webhook_url, content=b"{not json"),
        await http.post(webhook_url, json={"ticker": "MNQ1!", "action": "jump"}),
        # an admin body that fails validation, carrying a venue password
        await http.post(
            endpoints.auth + "/admin/logins",
            json={"password": venue_password, "remember_credentials": "maybe"},
            headers=rig.admin,
        ),
        # the venue refuses a wrong password (400, the venue's reason)
        await http.post(
            endpoints.auth + "/admin/logins",
            json={"username": "nobody_here", "password": venue_password},
            headers=rig.admin,
        ),
        await http.get(endpoints.auth + "/oauth/callback?state=forged&code=stolen"),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 403, 400, 400, 422, 400, 400]
    return answers


async def _stream_contents(rig: SecureRig) -> dict[str, bytes]:
    """Every message of every stream (KV buckets included): subject, headers and data."""
    nc = await rig.audit_client()
    try:
        js = nc.jetstream()
        contents: dict[str, bytes] = {}
        for info in await js.streams_info():
            name = info.config.name
            assert name is not None
            chunks: list[bytes] = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await js.get_msg(name, seq)
                except (NotFoundError, BadRequestError):  # consumed, deleted or expired
                    continue
                chunks.append(f"{msg.subject} {msg.headers or {}} ".encode() + (msg.data or b""))
            contents[name] = b"\n".join(chunks)
        return contents
    finally:
        await nc.close()


async def _venue_access_tokens(rig: SecureRig) -> dict[str, str]:
    """The venue access tokens Phalanx holds, opened from the TOKENS bucket."""
    nc = await rig.audit_client()
    try:
        kv = await nc.jetstream().key_value("tokens")
        decode = token_decoder(key_ring_from_settings(rig.token_keys, rig.admin_token))
        tokens = {}
        for key in await kv.keys():
            entry = await kv.get(key)
            assert entry.value is not None
            tokens[f"venue access token of {key}"] = decode(entry.value).access_token
        return tokens
    finally:
        await nc.close()


async def _outputs(
    rig: SecureRig, metrics: dict[str, str], answers: list[httpx.Response]
) -> dict[str, bytes]:
    """Every output of the run, by where it came from: logs, streams, spans, metrics, answers."""
    outputs: dict[str, bytes] = {}
    for log in sorted(rig.system.log_dir.glob("*.log")):
        if log.stem != "sim":
            outputs[f"log of {log.stem}"] = log.read_bytes()
    outputs["NATS server log"] = rig.nats_log.read_bytes()
    for stream, content in (await _stream_contents(rig)).items():
        outputs[f"stream {stream}"] = content
    outputs["exported spans"] = b"\n".join(rig.receiver.raw_exports)
    for name, text in metrics.items():
        outputs[f"/metrics of {name}"] = text.encode()
    for n, answered in enumerate(answers):
        route = answered.request.url.path.rsplit("/", 1)[0]  # the last part may be a secret
        outputs[f"answer {n} ({answered.status_code}) to {answered.request.method} {route}"] = (
            answered.content
        )

    return outputs


async def test_no_secret_in_any_output_of_a_full_run(rig: SecureRig) -> None:
    system = rig.system
    endpoints = system.endpoints
    seeded = await seed(endpoints, logins=1, accounts_per_login=2)
    secret_of_webhook = seeded.webhook_url.rsplit("/", 1)[1]
    rig.found_secrets["webhook secret"] = secret_of_webhook
    async with httpx.AsyncClient(timeout=15) as http:
        logins = (await http.get(endpoints.auth + "/admin/logins", headers=rig.admin)).json()
        venue_password = f"pw-{logins[0]['username']}"  # how seed() makes venue users
        rig.found_secrets["venue password of the seeded login"] = venue_password
        await _oauth_login(rig, http)

        async def connected() -> bool:
            health = (await http.get(system.executor_url(0) + "/healthz")).json()
            return int(health["logins_connected"]) >= 2

        await eventually(connected, timeout=40, what="both logins connected")
        price = {"symbol": front_month(), "price": 21000}
        (await http.post(endpoints.sim + "/admin/prices", json=price)).raise_for_status()
        answer = await http.post(
            seeded.webhook_url, json={"ticker": "MNQ1!", "action": "buy", "quantity": 1}
        )
        assert answer.status_code == 200, answer.text
        answers = [answer, *await _bad_requests(rig, http, seeded.webhook_url, venue_password)]

        async def traded() -> bool:
            orders = [
                (await http.get(endpoints.sim + "/admin/orders", params={"accountId": a})).json()
                for a in seeded.account_ids
            ]
            return all(len(o) >= 1 for o in orders)

        await eventually(traded, timeout=30, what="an order on each seeded account")
        killed = await http.post(
            system.executor_url(0) + "/admin/kill-switch",
            json={"reason": "end of the secrets test"},
            headers=rig.admin,
        )
        assert killed.status_code == 202, killed.text

        async def flat() -> bool:
            positions = (await http.get(endpoints.ledger + "/positions")).json()["positions"]
            return bool(positions) and all(p["net_pos"] == 0 for p in positions)

        await eventually(flat, timeout=30, what="the kill switch flattened every position")
        violations = (await http.get(endpoints.sim + "/admin/violations")).json()
        assert violations["count"] == 0, violations
        metrics = {
            name: (await http.get(url + "/metrics")).text
            for name, url in (
                ("ingest", endpoints.ingest),
                ("auth", endpoints.auth),
                ("ledger", endpoints.ledger),
                ("executor-0", system.executor_url(0)),
            )
        }

    rig.found_secrets.update(await _venue_access_tokens(rig))
    assert any(k.startswith("venue access token") for k in rig.found_secrets)

    async def exported() -> bool:  # the kill switch's spans are exported too
        return any("kill" in s.name.lower() for s in rig.receiver.spans) or bool(
            rig.receiver.raw_exports
        )

    await eventually(exported, timeout=10, what="spans exported")
    await asyncio.sleep(0.5)  # the last batch (OTEL_BSP_SCHEDULE_DELAY is 0.1 s)
    outputs = await _outputs(rig, metrics, answers)
    assert outputs["exported spans"]
    assert outputs["stream SIGNALS"]
    assert outputs["log of ingest"]
    # each service did all of the above as its own NATS user, never outside its permissions
    violations_at_nats = [
        line for line in outputs["NATS server log"].splitlines() if b"Violation" in line
    ]
    assert violations_at_nats == []
    leaks = [
        f"{what} in {where}"
        for what, value in rig.secrets().items()
        for where, content in outputs.items()
        if value and value.encode() in content
    ]
    assert leaks == [], leaks
    total = sum(len(content) for content in outputs.values())
    print(
        f"measured: {len(rig.secrets())} secrets x {len(outputs)} outputs ({total} bytes): "
        "0 leaks, 0 NATS permission violations"
    )
