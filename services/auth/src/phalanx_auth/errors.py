"""Why connecting a login failed: each error carries the venue's text only, never a secret."""

from __future__ import annotations

__all__ = [
    "InvalidCredentials",
    "LoginConflict",
    "LoginError",
    "UnknownLogin",
    "VenueRefused",
    "VenueUnavailable",
]


class LoginError(Exception):
    """Connecting a login failed; nothing was stored."""


class InvalidCredentials(LoginError):
    """The venue refused the username/password (or the API key)."""


class VenueRefused(LoginError):
    """The venue is throttling logins (penalty, captcha or lockout): wait before retrying."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VenueUnavailable(LoginError):
    """The venue could not be reached or answered nonsense."""


class LoginConflict(LoginError):
    """Another username already maps to the same login id."""


class UnknownLogin(LoginError):
    """No such login."""
