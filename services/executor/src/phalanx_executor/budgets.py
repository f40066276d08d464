"""Which shared budgets one venue request of a login spends (ADR-0004)."""

from __future__ import annotations

from phalanx_executor.ratelimit import Budget, Window

__all__ = ["BudgetBook"]


class BudgetBook:
    """Budgets per login (``login:<id>``) plus, when configured, the egress IP's."""

    def __init__(
        self,
        login_windows: tuple[tuple[int, float], ...],
        ip_windows: tuple[tuple[int, float], ...] = (),
        egress_ip: str = "default",
    ) -> None:
        self._login_windows = tuple(Window(n, s) for n, s in login_windows)
        self._ip = (
            Budget(f"ip:{egress_ip}", tuple(Window(n, s) for n, s in ip_windows))
            if ip_windows
            else None
        )

    def for_login(self, login_id: str) -> list[Budget]:
        """Every budget a request of ``login_id`` spends; the login's own comes first."""
        login = Budget(f"login:{login_id}", self._login_windows)
        return [login] if self._ip is None else [login, self._ip]
