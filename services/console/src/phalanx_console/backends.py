"""The other services' admin APIs, over HTTP with the admin token (ADR-0130).

The console imports no other service: it knows their routes, as any client of their documented
APIs does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from fastapi import Path

__all__ = ["AdminApis", "BackendError", "Id", "Service"]

Service = Literal["ingest", "auth", "executor", "ledger"]

Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
"""A strategy or signal id in a console path: only what ids are made of, so one never changes
the path or query of the admin API call it goes into."""


class BackendError(Exception):
    """A service answered with an error, or could not be reached."""

    def __init__(self, service: Service, status: int, detail: str) -> None:
        super().__init__(f"{service}: {status}: {detail}")
        self.service = service
        self.status = status
        self.detail = detail


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    if isinstance(detail, list):  # a 422: name the fields, never the values
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)[:300]


class AdminApis:
    """One HTTP client for every service's admin API.

    Args:
        urls: Base URL of each service.
        admin_token: The admin credential they share.
        timeout_s: Timeout of one call.
    """

    def __init__(self, urls: dict[Service, str], admin_token: str, timeout_s: float = 10.0) -> None:
        self.urls = {k: v.rstrip("/") for k, v in urls.items()}
        self._http = httpx.AsyncClient(
            timeout=timeout_s, headers={"Authorization": f"Bearer {admin_token}"}
        )

    async def call(
        self,
        service: Service,
        method: str,
        path: str,
        body: Any = None,
        timeout_s: float | None = None,
        **params: Any,
    ) -> Any:
        """Call ``path`` on ``service`` and return the decoded JSON answer.

        ``timeout_s`` replaces the client's timeout for this call (a long one, such as the
        ledger's reconciliation of every account).

        Raises:
            BackendError: on an error status or when the service cannot be reached.
        """
        query = {k: v for k, v in params.items() if v is not None}
        try:
            resp = await self._http.request(
                method,
                self.urls[service] + path,
                json=body,
                params=query,
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise BackendError(service, 503, f"unreachable ({type(exc).__name__})") from None
        if resp.status_code >= 400:
            raise BackendError(service, resp.status_code, _detail(resp))
        return resp.json() if resp.content else None

    async def get(self, service: Service, path: str, **params: Any) -> Any:
        """``GET`` ``path`` on ``service``."""
        return await self.call(service, "GET", path, **params)

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()
