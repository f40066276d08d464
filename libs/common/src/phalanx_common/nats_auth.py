"""How a service authenticates to NATS and checks its certificate (ADR-0086).

Settings (all optional, from the Secret/ConfigMap in Kubernetes):

- ``PHALANX_NATS_USER`` / ``PHALANX_NATS_PASSWORD``: a user of the server's ``authorization``
  block (a ``nats://user:password@host`` URL works too, but puts the password in the URL);
- ``PHALANX_NATS_TLS_CA_FILE``: the CA bundle that signed the server's certificate (``tls://``
  URLs, or a server that requires TLS); without it the system trust store is used;
- ``PHALANX_NATS_TLS_CERT_FILE`` / ``PHALANX_NATS_TLS_KEY_FILE``: a client certificate when the
  server verifies clients (mutual TLS).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from phalanx_common.settings import CommonSettings, SettingsError

__all__ = ["NatsAuth"]


@dataclass(frozen=True)
class NatsAuth:
    """Credentials and TLS material for :meth:`phalanx_common.bus.Bus.connect`."""

    user: str = ""
    password: str = ""
    tls_ca_file: str = ""
    tls_cert_file: str = ""
    tls_key_file: str = ""

    def __repr__(self) -> str:
        return f"NatsAuth(user={self.user!r}, tls={self.uses_tls})"

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> NatsAuth:
        """The NATS credentials of a service's settings.

        Raises:
            SettingsError: a password without a user, or a certificate without its key.
        """
        if settings.nats_password and not settings.nats_user:
            raise SettingsError("PHALANX_NATS_PASSWORD is set but PHALANX_NATS_USER is not")
        if bool(settings.nats_tls_cert_file) != bool(settings.nats_tls_key_file):
            raise SettingsError(
                "PHALANX_NATS_TLS_CERT_FILE and PHALANX_NATS_TLS_KEY_FILE go together"
            )
        return cls(
            user=settings.nats_user,
            password=settings.nats_password,
            tls_ca_file=settings.nats_tls_ca_file,
            tls_cert_file=settings.nats_tls_cert_file,
            tls_key_file=settings.nats_tls_key_file,
        )

    @property
    def uses_tls(self) -> bool:
        """Whether a TLS context is configured (a ``tls://`` URL uses TLS anyway)."""
        return bool(self.tls_ca_file or self.tls_cert_file)

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context verifying the server (hostname included) against the CA."""
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca_file or None
        )
        if self.tls_cert_file:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs["user"] = self.user
            kwargs["password"] = self.password
        if self.uses_tls:
            kwargs["tls"] = self.tls_context()
        return kwargs
