"""Start-up refusal of empty, default or placeholder secrets outside development (ADR-0085).

Every service's entry point loads its settings with :func:`load_service_settings`, which runs
:func:`refuse_unsafe_secrets`: unless ``PHALANX_DEV_MODE=true``, the process stops before it
connects to anything when

- ``PHALANX_ADMIN_TOKEN`` is empty, a known development value (``change-me``,
  ``dev-admin-token``), contains a placeholder marker (``REPLACE-ME``, ``changeme``, ...), or is
  shorter than :data:`MIN_ADMIN_TOKEN_CHARS` characters;
- ``PHALANX_TOKEN_KEYS`` is empty (the development ring derived from the admin token would be
  used), malformed, or lists a key that is the published development key, carries a placeholder
  marker in its id, or has almost no distinct bytes (``AAAA...``);
- a service-specific secret (e.g. auth's ``PHALANX_OAUTH_CLIENT_SECRET``), when set, is a known
  development value or a placeholder.

Messages name the variable and the rule, never the value.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping
from typing import TypeVar

from phalanx_common.crypto import CryptoError, KeyRing
from phalanx_common.settings import CommonSettings, SettingsError, load_settings

__all__ = [
    "DEV_SECRET_VALUES",
    "MIN_ADMIN_TOKEN_CHARS",
    "UnsafeSecretError",
    "load_service_settings",
    "refuse_unsafe_secrets",
]

C = TypeVar("C", bound=CommonSettings)

MIN_ADMIN_TOKEN_CHARS = 24
"""``python -c 'import secrets; print(secrets.token_urlsafe(32))'`` prints 43."""

DEV_SECRET_VALUES: frozenset[str] = frozenset(
    {
        "change-me",  # CommonSettings.admin_token's default
        "dev-admin-token",  # deploy/local/dev.env, docker-compose.yml, the dev overlay
        "phalanx-dev-secret",  # the development OAuth client secret
    }
)

# The development token key of docker-compose.yml and the dev overlay (its text says what it is).
DEV_TOKEN_KEY_BYTES: frozenset[bytes] = frozenset({b"phalanx-dev-only-key-NOT-SECRET!"})

_PLACEHOLDER_MARKERS = (
    "replace-me",
    "replace_me",
    "replaceme",
    "change-me",
    "change_me",
    "changeme",
    "placeholder",
    "example",
    "your-",
    "not-secret",
)

# A random 32-byte key has about 30 distinct byte values; fewer than this is not a random key.
_MIN_DISTINCT_KEY_BYTES = 12


class UnsafeSecretError(SettingsError):
    """A secret is empty, a development default or a placeholder, and dev mode is off."""


def _placeholder_marker(value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered.startswith("<") and lowered.endswith(">"):
        return "<...>"
    return next((m for m in _PLACEHOLDER_MARKERS if m in lowered), None)


def _admin_token_problem(token: str) -> str | None:
    if not token.strip():
        return "is empty"
    if token in DEV_SECRET_VALUES:
        return "is a development default"
    marker = _placeholder_marker(token)
    if marker is not None:
        return f"looks like a placeholder (contains {marker!r})"
    if len(token) < MIN_ADMIN_TOKEN_CHARS:
        return f"is shorter than {MIN_ADMIN_TOKEN_CHARS} characters"
    return None


def _token_keys_problem(token_keys: str) -> str | None:
    if not token_keys.strip():
        return "is empty (tokens would be sealed with a key derived from the admin token)"
    try:
        KeyRing.parse(token_keys)
    except CryptoError as exc:
        return f"is malformed ({exc})"
    for raw in (p.strip() for p in token_keys.split(",")):
        if not raw:
            continue
        key_id, _, b64 = raw.partition(":")
        key = base64.b64decode(b64.strip())  # parsed above
        if key in DEV_TOKEN_KEY_BYTES:
            return f"lists the published development key (key id {key_id.strip()!r})"
        if _placeholder_marker(key_id) is not None:
            return f"has a placeholder key id {key_id.strip()!r}"
        if len(set(key)) < _MIN_DISTINCT_KEY_BYTES:
            return (
                f"key {key_id.strip()!r} is not random "
                "(generate one: python -m phalanx_common.crypto)"
            )
    return None


def _other_secret_problem(value: str) -> str | None:
    if value in DEV_SECRET_VALUES:
        return "is a development default"
    marker = _placeholder_marker(value)
    if marker is not None:
        return f"looks like a placeholder (contains {marker!r})"
    return None


def refuse_unsafe_secrets(
    settings: CommonSettings, optional_secrets: Mapping[str, str] | None = None
) -> None:
    """Raise unless every secret is usable in production, or ``PHALANX_DEV_MODE`` is true.

    Args:
        settings: the service's settings (``admin_token``, ``token_keys``, ``dev_mode``).
        optional_secrets: more secrets by variable name, checked only when not empty.

    Raises:
        UnsafeSecretError: naming every offending variable and why, never a value.
    """
    if settings.dev_mode:
        return
    problems: list[str] = []
    admin = _admin_token_problem(settings.admin_token)
    if admin is not None:
        problems.append(f"PHALANX_ADMIN_TOKEN {admin}")
    keys = _token_keys_problem(settings.token_keys)
    if keys is not None:
        problems.append(f"PHALANX_TOKEN_KEYS {keys}")
    for name, value in (optional_secrets or {}).items():
        if value:
            other = _other_secret_problem(value)
            if other is not None:
                problems.append(f"{name} {other}")
    if problems:
        raise UnsafeSecretError(
            "; ".join(problems)
            + ". Set real secrets, or PHALANX_DEV_MODE=true for development only."
        )


def load_service_settings(
    cls: type[C],
    environ: Mapping[str, str] | None = None,
    optional_secrets: tuple[str, ...] = (),
) -> C:
    """Settings of a service's entry point; exits the process on unsafe secrets.

    Args:
        cls: the service's settings class.
        environ: the environment (default ``os.environ``).
        optional_secrets: field names of extra secrets to check when set (e.g.
            ``"oauth_client_secret"``); ``nats_password`` always is.

    Raises:
        SystemExit: with a one-line message naming the variables (exit status 1).
    """
    settings = load_settings(cls, environ)
    names = ("nats_password", *optional_secrets)
    extra = {f"PHALANX_{name.upper()}": str(getattr(settings, name)) for name in names}
    try:
        refuse_unsafe_secrets(settings, extra)
    except UnsafeSecretError as exc:
        print(f"{settings.service_name}: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    return settings
