"""The auth service's counters (``GET /admin/metrics`` and the Prometheus collector)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["AuthMetrics"]


@dataclass
class AuthMetrics:
    """Counters of the auth service (``GET /admin/metrics``).

    ``token_from_api_access`` and ``api_access_fallbacks`` should stay near zero: each is a new
    venue session made because the stored token could not serve.
    """

    logins_connected: int = 0
    oauth_connects: int = 0
    oauth_failures: int = 0
    renewals: int = 0
    renewal_failures: int = 0
    renewal_cas_lost: int = 0
    renewals_skipped_budget: int = 0
    api_access_fallbacks: int = 0
    reauth_required: int = 0
    token_from_cache: int = 0
    token_from_kv: int = 0
    token_from_api_access: int = 0
    discoveries: int = 0
    accounts_linked: int = 0
    accounts_unlinked: int = 0
    renewal_passes: int = 0
    by_login_renewals: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> dict[str, int]:
        """Every counter except the per-login map."""
        out = asdict(self)
        out.pop("by_login_renewals")
        return out

    def renewed(self, login_id: str) -> None:
        """Count one successful renewal of ``login_id``."""
        self.renewals += 1
        self.by_login_renewals[login_id] = self.by_login_renewals.get(login_id, 0) + 1
