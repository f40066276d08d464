"""Phalanx console: the operator's web page over the services' admin APIs (ADR-0130).

Strategies and subscriptions (ingest), the live signal log (ingest's log, pushed by server-sent
events), positions and P&L (ledger), trading state and the kill switch (executor), logins and
accounts (auth). Server-rendered HTML with vendored htmx; sessions with CSRF tokens and two roles
(ADR-0131).
"""

from phalanx_console.service import ConsoleService, build_console
from phalanx_console.settings import ConsoleSettings

__all__ = ["ConsoleService", "ConsoleSettings", "build_console"]
