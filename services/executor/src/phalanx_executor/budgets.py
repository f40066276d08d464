"""Which shared budgets one venue request of a login spends (ADR-0004, ADR-0056)."""

from __future__ import annotations

from phalanx_executor.ratelimit import Budget, Window

__all__ = ["SYNC_ENDPOINT", "BudgetBook"]

SYNC_ENDPOINT = "user/syncrequest"
"""Tradovate limits this endpoint per client IP (300 an hour), whichever login calls it."""


class BudgetBook:
    """Budgets per login (``login:<id>``), per egress IP when configured, and per egress IP for
    the endpoints Tradovate limits by IP (``ip:<egress>:user/syncrequest``)."""

    def __init__(
        self,
        login_windows: tuple[tuple[int, float], ...],
        ip_windows: tuple[tuple[int, float], ...] = (),
        egress_ip: str = "default",
        sync_ip_windows: tuple[tuple[int, float], ...] = (),
    ) -> None:
        self._login_windows = tuple(Window(n, s) for n, s in login_windows)
        self._ip = (
            Budget(f"ip:{egress_ip}", tuple(Window(n, s) for n, s in ip_windows))
            if ip_windows
            else None
        )
        self._endpoints = (
            {
                SYNC_ENDPOINT: Budget(
                    f"ip:{egress_ip}:{SYNC_ENDPOINT}",
                    tuple(Window(n, s) for n, s in sync_ip_windows),
                )
            }
            if sync_ip_windows
            else {}
        )

    def for_login(self, login_id: str) -> list[Budget]:
        """Every budget a request of ``login_id`` spends; the login's own comes first."""
        login = Budget(f"login:{login_id}", self._login_windows)
        return [login] if self._ip is None else [login, self._ip]

    def for_request(self, login_id: str, endpoint: str = "") -> list[Budget]:
        """The budgets of one request to ``endpoint``: the login's, plus the endpoint's own
        per-IP budget where Tradovate keys the endpoint's limit by IP."""
        extra = self._endpoints.get(endpoint)
        budgets = self.for_login(login_id)
        return budgets if extra is None else [*budgets, extra]

    def to_block(self, login_id: str, endpoint: str = "") -> list[Budget]:
        """What a penalty on ``endpoint`` blocks: the login, and the endpoint's IP budget (the
        venue does not say which of its limits the request hit)."""
        login = self.for_login(login_id)[0]
        extra = self._endpoints.get(endpoint)
        return [login] if extra is None else [login, extra]
