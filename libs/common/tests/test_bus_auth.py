"""The bus against a nats-server that requires a user/password, and one that requires TLS.

The servers are real (``phalanx_testing.servers.start_nats`` with authentication and TLS
options); the certificates are made here with ``cryptography``.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from phalanx_common import ids, subjects
from phalanx_common.bus import Bus
from phalanx_common.errors import DependencyUnavailable
from phalanx_common.events import Signal, SignalReceived
from phalanx_common.nats_auth import NatsAuth
from phalanx_common.settings import CommonSettings, SettingsError
from phalanx_testing.servers import ServerProcess, start_nats

pytestmark = pytest.mark.integration

USER = "phalanx"
PASSWORD = "s3cret-for-this-test-only-7d1f"


@pytest.fixture
def nats_with_password() -> Iterator[ServerProcess]:
    server = start_nats(extra_args=["--user", USER, "--pass", PASSWORD])
    try:
        yield server
    finally:
        server.stop()


def _event() -> SignalReceived:
    return SignalReceived(
        event_id=ids.new_event_id(),
        ts_event=1,
        ts_init=1,
        signal_id="s1",
        strategy_id="strat",
        signal=Signal(ticker="MNQZ6", action="buy"),
    )


async def _publish_and_count(bus: Bus) -> int:
    await bus.ensure_stream(subjects.SIGNALS)
    ack = await bus.publish(subjects.signals_subject("strat"), _event())
    assert ack.stream == subjects.SIGNALS.name
    info = await bus.js.stream_info(subjects.SIGNALS.name)
    return int(info.state.messages)


async def test_without_credentials_the_server_refuses_and_nats_is_named(
    nats_with_password: ServerProcess,
) -> None:
    with pytest.raises(DependencyUnavailable, match="NATS"):
        await Bus.connect(nats_with_password.url, "test", connect_timeout_s=0.5)


async def test_a_wrong_password_is_refused(nats_with_password: ServerProcess) -> None:
    wrong = NatsAuth(user=USER, password="not-the-password")
    with pytest.raises(DependencyUnavailable, match="NATS"):
        await Bus.connect(nats_with_password.url, "test", connect_timeout_s=0.5, auth=wrong)


async def test_user_and_password_from_settings_connect_and_publish(
    nats_with_password: ServerProcess,
) -> None:
    settings = CommonSettings(nats_user=USER, nats_password=PASSWORD)
    bus = await Bus.connect(nats_with_password.url, "test", auth=NatsAuth.from_settings(settings))
    try:
        assert await _publish_and_count(bus) == 1
    finally:
        await bus.close()


def test_half_configured_credentials_are_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="PHALANX_NATS_USER"):
        NatsAuth.from_settings(CommonSettings(nats_password=PASSWORD))
    with pytest.raises(SettingsError, match="PHALANX_NATS_TLS_KEY_FILE"):
        NatsAuth.from_settings(CommonSettings(nats_tls_cert_file="/x.pem"))


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phalanx-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nats")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_tls_with_the_ca_and_a_password_connects_and_without_the_ca_does_not(
    tmp_path: Path,
) -> None:
    ca, cert, key = _certificates(tmp_path)
    server = start_nats(
        extra_args=[
            "--tls",
            "--tlscert",
            str(cert),
            "--tlskey",
            str(key),
            "--user",
            USER,
            "--pass",
            PASSWORD,
        ]
    )
    url = f"tls://127.0.0.1:{server.port}"
    try:
        untrusted = NatsAuth(user=USER, password=PASSWORD)
        with pytest.raises(DependencyUnavailable, match="NATS"):
            await Bus.connect(url, "test", connect_timeout_s=0.5, auth=untrusted)
        settings = CommonSettings(nats_user=USER, nats_password=PASSWORD, nats_tls_ca_file=str(ca))
        auth = NatsAuth.from_settings(settings)
        assert auth.uses_tls
        bus = await Bus.connect(url, "test", auth=auth)
        try:
            assert await _publish_and_count(bus) == 1
        finally:
            await bus.close()
    finally:
        server.stop()
