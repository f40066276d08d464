"""Server-side rendering: Jinja2 templates with autoescaping, and the headers of every page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["SECURITY_HEADERS", "STATIC_DIR", "Renderer"]

STATIC_DIR = Path(__file__).parent / "static"
_TEMPLATES = Path(__file__).parent / "templates"

# Scripts and styles only from the console itself (htmx is vendored, ADR-0130): an injected
# <script> or inline handler does not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _clock_time(ns: int | None) -> str:
    if not ns:
        return "—"
    moment = dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _money(value: object) -> str:
    """An amount with two decimals and thousands separators; ``—`` when there is none."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount.copy_abs() if amount == 0 else amount:,.2f}"  # never "-0.00"


def _sign(value: object) -> str:
    """``gain``, ``loss`` or ``even``: the CSS class of an amount."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return "even"
    return "gain" if amount > 0 else "loss" if amount < 0 else "even"


class Renderer:
    """Renders templates with the values every page needs.

    Args:
        trace_url: Link of a trace with ``{trace_id}`` (empty: no link).
    """

    def __init__(self, trace_url: str = "") -> None:
        self.env = Environment(
            loader=FileSystemLoader(_TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["clock"] = _clock_time
        self.env.filters["ms"] = _ms
        self.env.filters["money"] = _money
        self.env.filters["sign"] = _sign
        self.env.globals["trace_link"] = self.trace_link
        self._trace_url = trace_url

    def trace_link(self, trace_id: str) -> str:
        """Where a trace is looked at (empty when no trace URL is configured)."""
        if not trace_id or not self._trace_url:
            return ""
        return self._trace_url.replace("{trace_id}", trace_id)

    def fragment(self, template: str, **values: Any) -> str:
        """A template rendered to text."""
        return self.env.get_template(template).render(**values)

    def page(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        """A whole page as a response with the security headers."""
        return HTMLResponse(
            self.fragment(template, **values), status_code=status_code, headers=SECURITY_HEADERS
        )
