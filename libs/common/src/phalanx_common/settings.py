"""Settings: one frozen struct per service, read from ``PHALANX_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

__all__ = ["CommonSettings", "SettingsError", "load_settings"]

S = TypeVar("S", bound=msgspec.Struct)

PREFIX = "PHALANX_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Settings every service has."""

    nats_url: str = "nats://127.0.0.1:4222"
    redis_url: str = "redis://127.0.0.1:6379/0"
    log_level: str = "INFO"
    log_format: str = "json"  # PHALANX_LOG_FORMAT: json (one object per line) or text (ADR-0076)
    service_name: str = "phalanx"
    shutdown_budget_s: float = 10.0
    admin_token: str = "change-me"  # noqa: S105 - refused outside dev mode (ADR-0085)
    dev_mode: bool = False  # PHALANX_DEV_MODE: allow default/placeholder secrets (ADR-0085)
    http_host: str = "127.0.0.1"
    # HTTP limits of every service (ADR-0115): the largest request body on any route (413), how
    # long a connection may take to send a request's head, and the keep-alive idle time.
    max_request_bytes: int = 1024 * 1024
    http_head_timeout_s: float = 10.0
    http_keep_alive_s: float = 5.0
    stream_replicas: int = 1  # PHALANX_STREAM_REPLICAS: 3 on a 3-node JetStream cluster
    # PHALANX_STREAM_BYTE_LIMITS: apply the streams' max_bytes (reserved on the server's disk
    # up front, about 9.5 GiB in all; ADR-0087). On in the prod overlay.
    stream_byte_limits: bool = False
    token_keys: str = ""  # PHALANX_TOKEN_KEYS: "<id>:<base64>,..." (phalanx_common.crypto)
    # NATS credentials and TLS (ADR-0086); all optional, combinable with a nats://user:pw@ URL.
    nats_user: str = ""
    nats_password: str = ""
    nats_tls_ca_file: str = ""  # CA bundle that signed the server certificate
    nats_tls_cert_file: str = ""  # client certificate (mutual TLS), with nats_tls_key_file
    nats_tls_key_file: str = ""
    # PHALANX_GC_THRESHOLD: generation-0 threshold of the cyclic garbage collector (ADR-0186);
    # 0 keeps Python's own (700).
    gc_threshold: int = 50_000

    def __repr__(self) -> str:
        return f"{type(self).__name__}(nats_url={self.nats_url!r}, service={self.service_name!r})"


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build ``cls`` from ``PHALANX_<FIELD>`` variables; unset fields keep their defaults.

    Values are converted leniently (``"25"`` becomes ``25``; lists and objects are JSON).

    Raises:
        SettingsError: naming the variable whose value cannot be converted.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for name in cls.__struct_fields__:
        key = PREFIX + name.upper()
        if key in env:
            value = env[key]
            if value[:1] in ("[", "{"):
                try:
                    raw[name] = msgspec.json.decode(value)
                except msgspec.DecodeError as exc:
                    raise SettingsError(f"{key}: not valid JSON ({exc})") from exc
            else:
                raw[name] = value
    try:
        return msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting for {cls.__name__}: {exc} (prefix {PREFIX})") from exc
