"""Property-based checks: hypothesis on the parser and the live webhook, schemathesis on the
served OpenAPI document. None of them may ever see a 5xx (ADR-0012). Example counts are modest
and derandomized so the suite stays fast and repeatable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from phalanx_ingest.payload import parse_signal, signal_to_payload
from phalanx_ingest.responses import WebhookRejectedError
from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.webhook import WEBHOOK_PATH

pytestmark = pytest.mark.integration

T = TypeVar("T")
TOKEN = "property-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
FAST = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

_FIELDS = [
    "ticker", "action", "sentiment", "quantity", "quantityType", "orderType", "limitPrice",
    "stopPrice", "trailAmount", "trailPercent", "timeInForce", "price", "signalPrice",
    "takeProfit", "stopLoss", "time", "interval", "cancel", "cancelOrderType", "delay",
    "ignoreTradingWindows", "expiresAt", "id", "extras", "test", "type", "percent", "amount",
]  # fmt: skip
_WORDS = st.sampled_from(
    ["MNQ1!", "buy", "sell", "exit", "cancel", "add", "long", "flat", "limit", "stop",
     "stop_limit", "trailing_stop", "fixed_quantity", "percent_of_position", "dollar_amount",
     "gtc", "day", "2025-06-18T14:30:00Z", "{{ticker}}", "", " ", "1e999", "NaN", "-1", "0"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _WORDS,
    st.text(max_size=20),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=4),
    ),
    max_leaves=8,
)
_BODIES = st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=8)
# Near-valid signals: a real ticker and action plus a few fields, plausible or not.
_SIGNALS = st.builds(
    lambda action, extra: {"ticker": "MNQ1!", "action": action, **extra},
    st.sampled_from(["buy", "sell", "exit", "cancel", "add"]),
    st.dictionaries(
        st.sampled_from(["quantity", "sentiment", "orderType", "limitPrice", "time", "extras",
                         "timeInForce", "delay", "cancel", "id", "interval"]),
        st.one_of(_WORDS, st.integers(min_value=1, max_value=5), st.none()),
        max_size=3,
    ),
)  # fmt: skip


@FAST
@given(body=st.one_of(st.binary(max_size=200), _BODIES.map(msgspec.json.encode)))
def test_the_parser_either_accepts_or_refuses_with_a_message_code(body: bytes) -> None:
    refused: WebhookRejectedError | None
    try:
        signal = parse_signal(body)
    except WebhookRejectedError as rejection:
        refused = rejection
    else:
        refused = None
    if refused is not None:
        assert refused.status_code == 400
        assert refused.message_code
        assert refused.message
        return
    payload = signal_to_payload(signal)
    assert payload["ticker"] == signal.ticker
    msgspec.json.encode(payload)  # the echo is always serialisable


@FAST
@given(
    quantity=st.integers(min_value=1, max_value=10**6).map(Decimal),
    price=st.decimals(min_value=Decimal("0.25"), max_value=Decimal(10**6), places=2),
)
def test_numbers_keep_their_exact_decimal_value(quantity: Decimal, price: Decimal) -> None:
    body = f'{{"ticker": "MNQ1!", "action": "buy", "quantity": {quantity}, "price": {price}}}'

    signal = parse_signal(body.encode())

    assert signal.quantity == quantity
    assert signal.signal_price == price


class _ServedIngest:
    """An ingest service on its own event loop in a thread, so sync clients can drive it."""

    def __init__(self, service_settings: IngestSettings) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.service: IngestService = self._run(self._start(service_settings))

    async def _start(self, service_settings: IngestSettings) -> IngestService:
        service = await build_ingest(service_settings)
        await service.start()
        return service

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    def close(self) -> None:
        try:
            self._run(self.service.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


@pytest.fixture
def served(nats_url: str, tmp_path: Path) -> Iterator[IngestService]:
    ingest = _ServedIngest(
        IngestSettings(
            nats_url=nats_url,
            ingest_port=0,
            admin_token=TOKEN,
            ingest_outbox_dir=str(tmp_path / "outbox"),
            webhook_rate_per_min=0,
        )
    )
    try:
        yield ingest.service
    finally:
        ingest.close()


def _strategy(http: httpx.Client) -> dict[str, str]:
    created: dict[str, str] = http.post(
        "/admin/strategies", json={"name": "p"}, headers=ADMIN
    ).json()
    return {"strategy_id": created["strategy_id"], "secret": created["secret"]}


def test_the_live_webhook_never_answers_5xx(served: IngestService) -> None:
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        ids = _strategy(http)
        hook = f"/webhooks/{ids['strategy_id']}/{ids['secret']}"
        seen: set[int] = set()

        @FAST
        @given(
            body=st.one_of(
                _SIGNALS.map(msgspec.json.encode),
                _BODIES.map(msgspec.json.encode),
                st.binary(max_size=100),
            )
        )
        def post(body: bytes) -> None:
            response = http.post(hook, content=body)
            seen.add(response.status_code)
            assert response.status_code in (200, 400), response.text
            assert response.json()["success"] is (response.status_code == 200)

        post()
    assert seen == {200, 400}  # both sides were really exercised


def test_schemathesis_finds_no_5xx_in_the_served_openapi(served: IngestService) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        webhook_ids = _strategy(http)
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        fixed = webhook_ids if operation.path == WEBHOOK_PATH else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, path_parameters=fixed)

            @settings(FAST, max_examples=25)
            @given(case=strategy)
            def call(case: Any) -> None:
                response = case.call(base_url=served.url, headers=ADMIN)
                assert response.status_code < 500, (case.method, case.path, response.text)

            try:
                call()
            except Unsatisfiable:
                # Nothing in this operation can be made invalid (e.g. a GET without
                # parameters): there is no negative case to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
                continue
            checked += 1
    assert checked >= 15
