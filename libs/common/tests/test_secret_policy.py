"""The start-up refusal of empty, default and placeholder secrets (ADR-0085)."""

from __future__ import annotations

import base64

import pytest

from phalanx_common.crypto import generate_key
from phalanx_common.secret_policy import (
    MIN_ADMIN_TOKEN_CHARS,
    UnsafeSecretError,
    load_service_settings,
    refuse_unsafe_secrets,
)
from phalanx_common.settings import CommonSettings

GOOD_TOKEN = "q7Jx0fS1mBv3kR9wL2pZ8tYc4nH6aE5u"
GOOD_KEYS = f"k2026:{generate_key()}"
DEV_KEYS = "dev:cGhhbGFueC1kZXYtb25seS1rZXktTk9ULVNFQ1JFVCE="  # docker-compose.yml, dev overlay


def _settings(**kw: object) -> CommonSettings:
    values: dict[str, object] = {"admin_token": GOOD_TOKEN, "token_keys": GOOD_KEYS, **kw}
    return CommonSettings(**values)  # type: ignore[arg-type]


def test_real_secrets_pass() -> None:
    refuse_unsafe_secrets(_settings())


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "is empty"),
        ("change-me", "development default"),
        ("dev-admin-token", "development default"),
        ("REPLACE-ME-admin-token", "placeholder"),
        ("changeme-changeme-changeme-changeme", "placeholder"),
        ("<a long random admin token goes here>", "placeholder"),
        ("short-but-random-9f2", f"shorter than {MIN_ADMIN_TOKEN_CHARS}"),
    ],
)
def test_bad_admin_token_is_refused_naming_the_variable(token: str, why: str) -> None:
    with pytest.raises(UnsafeSecretError, match=f"PHALANX_ADMIN_TOKEN [^;]*{why}") as info:
        refuse_unsafe_secrets(_settings(admin_token=token))
    if token:
        assert token not in str(info.value)  # never echo the value


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ("", "is empty"),
        ("REPLACE-ME-key-id:base64-of-32-bytes", "malformed"),
        (DEV_KEYS, "published development key"),
        (f"{GOOD_KEYS},{DEV_KEYS}", "published development key"),
        (f"replace-me:{generate_key()}", "placeholder key id"),
        (f"k1:{base64.b64encode(bytes(32)).decode()}", "not random"),
    ],
    # fixed ids: the generated keys differ per process (pytest-xdist workers must agree)
    ids=["empty", "malformed", "dev-key", "with-dev-key", "placeholder-id", "not-random"],
)
def test_bad_token_keys_are_refused_naming_the_variable(keys: str, why: str) -> None:
    with pytest.raises(UnsafeSecretError, match=f"PHALANX_TOKEN_KEYS [^;]*{why}"):
        refuse_unsafe_secrets(_settings(token_keys=keys))


def test_a_strong_token_with_symbols_passes() -> None:
    refuse_unsafe_secrets(_settings(admin_token="k<9#Vd>2!qP0^wZ&7rL$1xN@4mB*6tC%"))


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(UnsafeSecretError) as info:
        refuse_unsafe_secrets(CommonSettings())
    assert "PHALANX_ADMIN_TOKEN" in str(info.value)
    assert "PHALANX_TOKEN_KEYS" in str(info.value)
    assert "PHALANX_DEV_MODE=true" in str(info.value)


def test_optional_secrets_are_checked_only_when_set() -> None:
    refuse_unsafe_secrets(_settings(), {"PHALANX_OAUTH_CLIENT_SECRET": ""})
    refuse_unsafe_secrets(_settings(), {"PHALANX_OAUTH_CLIENT_SECRET": "issued-by-the-venue"})
    with pytest.raises(UnsafeSecretError, match="PHALANX_OAUTH_CLIENT_SECRET"):
        refuse_unsafe_secrets(_settings(), {"PHALANX_OAUTH_CLIENT_SECRET": "phalanx-dev-secret"})


def test_dev_mode_allows_the_development_defaults() -> None:
    refuse_unsafe_secrets(CommonSettings(dev_mode=True))
    refuse_unsafe_secrets(_settings(dev_mode=True, token_keys=DEV_KEYS), {"X": "REPLACE-ME"})


def test_load_service_settings_reads_dev_mode_from_the_environment() -> None:
    env = {"PHALANX_ADMIN_TOKEN": "dev-admin-token", "PHALANX_DEV_MODE": "true"}
    assert load_service_settings(CommonSettings, env).dev_mode is True


def test_load_service_settings_exits_and_checks_the_nats_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {
        "PHALANX_ADMIN_TOKEN": GOOD_TOKEN,
        "PHALANX_TOKEN_KEYS": GOOD_KEYS,
        "PHALANX_NATS_USER": "phalanx",
        "PHALANX_NATS_PASSWORD": "REPLACE-ME",
    }
    with pytest.raises(SystemExit) as info:
        load_service_settings(CommonSettings, env)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "refusing to start" in err
    assert "PHALANX_NATS_PASSWORD" in err
