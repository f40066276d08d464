"""Who may see and change what: the session cookie, the role and the CSRF check (ADR-0131).

- Every page needs a session (``phalanx_console`` cookie: ``HttpOnly``, ``SameSite=Strict``,
  ``Secure``); without one a page redirects to ``/login`` and anything else answers 401.
- Every change is a ``POST`` that needs an ``admin`` session, that session's CSRF token (form
  field ``csrf`` or header ``X-CSRF-Token``, which htmx sends) and an ``Origin`` (else a
  ``Referer``) naming this console's own host. Each failure is a 403 and changes nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from phalanx_console.sessions import Session, SessionStore

__all__ = [
    "COOKIE",
    "Forbidden",
    "SignInNeeded",
    "admin_form",
    "first",
    "read_form",
    "same_origin",
    "signed_in",
]

COOKIE = "phalanx_console"
_MAX_FORM_BYTES = 512 * 1024


class SignInNeeded(Exception):
    """The request has no live session."""


class Forbidden(Exception):
    """The session may not do this (role, CSRF token or origin)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signed_in(request: Request) -> Session:
    """The request's session.

    Raises:
        SignInNeeded: no cookie, or not a live session.
    """
    store: SessionStore = request.app.state.sessions
    session = store.get(request.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded()
    return session


def same_origin(request: Request) -> bool:
    """Whether the request came from this console's own pages (``Origin``, else ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    parts = urlsplit(source)
    if not parts.scheme or not parts.netloc:
        return False  # none, or "null" (sandboxed or privacy-stripped)
    return parts.netloc == request.headers.get("host", "")


async def read_form(request: Request) -> dict[str, list[str]]:
    """The ``application/x-www-form-urlencoded`` body, each name with all its values."""
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise Forbidden("form too large")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


async def admin_form(request: Request) -> tuple[Session, dict[str, list[str]]]:
    """The session and form of a change, after every check of the module docstring.

    Raises:
        SignInNeeded: no session.
        Forbidden: not an admin, wrong or missing CSRF token, or a foreign origin.
    """
    session = signed_in(request)
    if not session.is_admin:
        raise Forbidden(f"{session.user} has the read-only role")
    if not same_origin(request):
        raise Forbidden("the request did not come from this console's pages")
    form = await read_form(request)
    presented = request.headers.get("x-csrf-token") or (form.get("csrf") or [""])[0]
    if not session.csrf_matches(presented):
        raise Forbidden("missing or wrong CSRF token; reload the page")
    return session, form


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    """The first value of ``name`` in a form, stripped."""
    values = form.get(name)
    return values[0].strip() if values else default
