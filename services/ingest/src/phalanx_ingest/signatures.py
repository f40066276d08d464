"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

For senders that can sign (scripts, other platforms; TradingView cannot set headers). The signed
content is ``{webhook-id}.{webhook-timestamp}.{raw body}``, HMAC-SHA256 with the strategy's
``whsec_`` key; ``webhook-signature`` is a space-separated list of ``v1,<base64>`` (several while
the sender rotates). The timestamp must be within the tolerance of now; the ``webhook-id``
becomes the signal's explicit id, so a replayed delivery inside the tolerance is a duplicate in
JetStream's window (the seen-id store, shared by every replica; see ADR-0013).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

from fastapi import status

from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = ["SIGNATURE_HEADERS", "new_signing_secret", "sign", "verify_signature"]

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_PREFIX = "whsec_"


def new_signing_secret() -> str:
    """A fresh ``whsec_`` key (32 random bytes, base64)."""
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender would send (``v1,<base64>``)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _refuse(code: str, message: str) -> WebhookRejectedError:
    return WebhookRejectedError(code, message, status.HTTP_403_FORBIDDEN)


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[str],
    now_s: float,
    tolerance_s: float,
) -> str:
    """Check a Standard Webhooks signature and return the ``webhook-id``.

    Raises:
        WebhookRejectedError: 403 ``signature-expired`` (timestamp outside the tolerance) or
            ``invalid-signature`` (missing parts, malformed, or no signature matches).
    """
    msg_id = headers.get("webhook-id", "")
    timestamp_text = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not msg_id or not timestamp_text or not signatures or len(msg_id) > 256:
        raise _refuse(
            MessageCode.INVALID_SIGNATURE,
            "A signed webhook needs the webhook-id, webhook-timestamp and webhook-signature "
            "headers (Standard Webhooks).",
        )
    if not timestamp_text.isdigit():
        raise _refuse(
            MessageCode.INVALID_SIGNATURE,
            "webhook-timestamp must be the signing time in whole seconds since the epoch.",
        )
    timestamp = int(timestamp_text)
    if abs(now_s - timestamp) > tolerance_s:
        raise _refuse(
            MessageCode.SIGNATURE_EXPIRED,
            f"webhook-timestamp is more than {int(tolerance_s)} s away from the time here; "
            "sign each delivery when it is sent, and check the sender's clock.",
        )
    for key in keys:
        if not key:
            continue
        try:
            expected = sign(key, msg_id, timestamp, body).encode()
        except (binascii.Error, ValueError):
            continue
        for candidate in signatures.split():
            if hmac.compare_digest(candidate.encode(), expected):
                return msg_id
    raise _refuse(
        MessageCode.INVALID_SIGNATURE,
        "webhook-signature does not match the body. Sign "
        "'{webhook-id}.{webhook-timestamp}.{body}' with the strategy's signing secret "
        "(HMAC-SHA256, base64, prefixed v1,).",
    )
