"""Broker logins, tokens and accounts: the only component that calls the venue's token endpoints.

See :mod:`phalanx_auth.logins` (registration and renewal), :mod:`phalanx_auth.admin` (admin API)
and :mod:`phalanx_auth.service` (assembly).
"""

from phalanx_auth.service import AuthService, build_auth
from phalanx_auth.settings import AuthSettings

__all__ = ["AuthService", "AuthSettings", "build_auth"]
