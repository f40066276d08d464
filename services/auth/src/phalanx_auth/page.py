"""The account management page (server-rendered HTML, no JavaScript) and the OAuth callback.

- ``GET /ui`` lists logins (status: active / needs re-authorization / disconnected, how the login
  was connected, when its token expires) and their accounts, with a **Connect Tradovate** button
  per login (re-consent) and one for a new login, and a **Disconnect** button per login.
- ``POST /ui/connect`` (form: ``csrf``, ``login_id``?) → 303 to the venue's consent page, with a
  short-lived ``HttpOnly`` cookie that binds the consent to this browser.
- ``POST /ui/logins/{id}/disconnect`` (form: ``csrf``) → 303 back to the page.
- ``GET /oauth/begin?ticket`` (no admin credential: the ticket is single-use and short-lived,
  made by ``POST /admin/oauth/start`` with ``browser: true`` for the console, ADR-0135) → the
  binding cookie and 303 to the venue's consent page;
- ``GET /oauth/callback?code&state[&error]`` (no admin credential: the single-use state, the
  browser cookie and PKCE protect it) → 303 to the page (or to the ``return_to`` the consent was
  started with) on success, a 400 page saying why otherwise.

The page and its forms need the admin credential: HTTP Basic with the admin token as the
password (any user name), or ``Authorization: Bearer``; an empty token never matches. Since
browsers resend Basic credentials by themselves, a form is accepted only (ADR-0118)

- from a page session: ``GET /ui`` sets a random session cookie (``HttpOnly``,
  ``SameSite=Strict``, path ``/ui``) and puts that session's CSRF token (an HMAC of the session
  under a key derived from the admin token) in its forms; the form must send both, and they
  must match;
- with an ``Origin`` (or, without one, a ``Referer``) naming this service: the host the request
  was sent to (``Host``), or the origin of ``PHALANX_OAUTH_REDIRECT_URI`` when set.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import secrets
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from phalanx_auth.errors import UnknownLogin
from phalanx_auth.logins import LoginManager
from phalanx_auth.oauth import OAuthError, OAuthFlow, Started
from phalanx_auth.settings import AuthSettings
from phalanx_auth.views import LoginOut, LoginViews
from phalanx_common.http_limits import bearer_matches

__all__ = ["BINDING_COOKIE", "SESSION_COOKIE", "add_page_routes", "csrf_token"]

log = logging.getLogger(__name__)

BINDING_COOKIE = "phalanx_oauth"
SESSION_COOKIE = "phalanx_page"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;font-size:.95rem}
.status-active{color:#176d2c}.status-reauth_required{color:#a61b1b;font-weight:bold}
.status-disconnected{color:#777}.notice{background:#eef6ee;padding:.5rem}
.error{background:#fbeaea;padding:.5rem}form{display:inline}button{cursor:pointer}
"""


def csrf_token(admin_token: str, session: str) -> str:
    """The CSRF token of one page session's forms (an HMAC of the session id)."""
    key = hashlib.sha256(b"phalanx-auth-page-csrf\x00" + admin_token.encode()).digest()
    return hmac.new(key, session.encode(), hashlib.sha256).hexdigest()


def _authorized(request: Request, admin_token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return bearer_matches(header.strip(), admin_token)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        _, _, password = decoded.partition(":")
        return bearer_matches(f"Bearer {password}", admin_token)
    return False


def _same_origin(request: Request, public_origin: str) -> bool:
    """Whether the form was sent from this service's own pages (``Origin``, else ``Referer``)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    parts = urlsplit(source)
    if not parts.scheme or not parts.netloc:
        return False  # no Origin or Referer, or "null" (sandboxed or privacy-stripped)
    if public_origin and f"{parts.scheme}://{parts.netloc}" == public_origin:
        return True
    return parts.netloc == request.headers.get("host", "")


def _challenge() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "the account page needs the admin credential (any user name, the admin token as password)",
        headers={"WWW-Authenticate": 'Basic realm="phalanx-auth", charset="UTF-8"'},
    )


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status_code,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _expires_in(seconds: float | None) -> str:
    if seconds is None:
        return "no token"
    if seconds <= 0:
        return "expired"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


_STATUS_TEXT = {
    "active": "active",
    "reauth_required": "needs re-authorization",
    "disconnected": "disconnected",
}


def _login_rows(logins: list[LoginOut], csrf: str, oauth_ready: bool) -> str:
    if not logins:
        return "<p id=no-logins>No logins yet.</p>"
    rows = []
    for login in logins:
        lid = html.escape(login.login_id)
        status_text = _STATUS_TEXT.get(login.status, login.status)
        reason = f"<br><small>{html.escape(login.reason)}</small>" if login.reason else ""
        connect = (
            f'<form method=post action="/ui/connect"><input type=hidden name=csrf value="{csrf}">'
            f'<input type=hidden name=login_id value="{lid}">'
            f'<button type=submit id="connect-{lid}">Connect Tradovate</button></form>'
            if oauth_ready
            else ""
        )
        disconnect = (
            f'<form method=post action="/ui/logins/{quote(login.login_id)}/disconnect">'
            f'<input type=hidden name=csrf value="{csrf}">'
            f'<button type=submit id="disconnect-{lid}">Disconnect</button></form>'
            if login.status != "disconnected"
            else ""
        )
        rows.append(
            f'<tr id="login-{lid}" data-status="{html.escape(login.status)}">'
            f"<td>{lid}</td><td>{html.escape(login.username)}</td>"
            f"<td>{html.escape(login.method)}</td>"
            f'<td class="status status-{html.escape(login.status)}">{status_text}{reason}</td>'
            f'<td class="expires">{_expires_in(login.token_expires_in_s)}</td>'
            f"<td>{len(login.accounts)}</td><td>{connect} {disconnect}</td></tr>"
        )
    return (
        "<table id=logins><thead><tr><th>login</th><th>user</th><th>via</th><th>status</th>"
        "<th>token expires in</th><th>accounts</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _account_rows(logins: list[LoginOut]) -> str:
    accounts = [a for login in logins for a in login.accounts]
    if not accounts:
        return "<p id=no-accounts>No linked accounts.</p>"
    rows = "".join(
        f'<tr id="account-{a.account_id}"><td>{a.account_id}</td>'
        f"<td>{html.escape(a.account_spec)}</td><td>{html.escape(a.login_id)}</td>"
        f"<td>{'active' if a.active else 'inactive'}</td></tr>"
        for a in accounts
    )
    return (
        "<table id=accounts><thead><tr><th>account id</th><th>account</th><th>login</th>"
        f"<th>status</th></tr></thead><tbody>{rows}</tbody></table>"
    )


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:8192].decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def add_page_routes(
    app: FastAPI,
    settings: AuthSettings,
    manager: LoginManager,
    flow: OAuthFlow,
    views: LoginViews,
) -> None:
    """Add ``/ui``, its forms and ``/oauth/callback`` to ``app`` (hidden from OpenAPI)."""
    pages = _Pages(settings, manager, flow, views)
    app.get("/", include_in_schema=False)(pages.root)
    app.get("/ui", include_in_schema=False)(pages.page)
    app.post("/ui/connect", include_in_schema=False)(pages.connect)
    app.get("/oauth/begin", include_in_schema=False)(pages.begin)
    app.post("/ui/logins/{login_id}/disconnect", include_in_schema=False)(pages.disconnect)
    app.get("/oauth/callback", include_in_schema=False)(pages.callback)


class _Pages:
    """The page's handlers, over the services they use."""

    def __init__(
        self, settings: AuthSettings, manager: LoginManager, flow: OAuthFlow, views: LoginViews
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.flow = flow
        self.views = views
        redirect = urlsplit(settings.oauth_redirect_uri)
        self.public_origin = f"{redirect.scheme}://{redirect.netloc}" if redirect.netloc else ""

    def guard(self, request: Request) -> None:
        if not _authorized(request, self.settings.admin_token):
            raise _challenge()

    async def checked_form(self, request: Request) -> dict[str, str]:
        self.guard(request)
        if not _same_origin(request, self.public_origin):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "the form was not sent from this service's page"
            )
        session = request.cookies.get(SESSION_COOKIE, "")
        form = await _form(request)
        sent = form.get("csrf", "")
        if not session or not sent:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing page session or CSRF token")
        if not hmac.compare_digest(sent, csrf_token(self.settings.admin_token, session)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong CSRF token for this session")
        return form

    async def root(self) -> RedirectResponse:
        return RedirectResponse("/ui", status_code=status.HTTP_303_SEE_OTHER)

    async def page(self, request: Request) -> HTMLResponse:
        self.guard(request)
        session = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
        csrf = csrf_token(self.settings.admin_token, session)
        logins = await self.views.all()
        notices = []
        for key, text in (("connected", "Connected"), ("disconnected", "Disconnected")):
            value = request.query_params.get(key)
            if value:
                notices.append(
                    f"<p class=notice id=notice>{text} login {html.escape(value[:128])}.</p>"
                )
        new_login = (
            f'<form method=post action="/ui/connect"><input type=hidden name=csrf value="{csrf}">'
            '<button type=submit id="connect-new">Connect a Tradovate login</button></form>'
            if self.flow.configured
            else "<p><small>OAuth is not configured (PHALANX_TRADOVATE_OAUTH_URL, "
            "PHALANX_OAUTH_CLIENT_ID, PHALANX_OAUTH_CLIENT_SECRET); logins can still be "
            "added by API access through the admin API.</small></p>"
        )
        body = (
            "".join(notices)
            + "<h2>Logins</h2>"
            + _login_rows(logins, csrf, self.flow.configured)
            + new_login
            + "<h2>Accounts</h2>"
            + _account_rows(logins)
        )
        response = _page("Phalanx — broker logins", body)
        response.set_cookie(
            SESSION_COOKIE,
            session,
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https" or self.public_origin.startswith("https://"),
        )
        return response

    def to_venue(self, started: Started) -> Response:
        response = RedirectResponse(started.authorize_url, status_code=status.HTTP_303_SEE_OTHER)
        response.set_cookie(
            BINDING_COOKIE,
            started.browser_nonce,
            max_age=int(self.settings.oauth_state_ttl_s),
            path="/oauth/callback",
            httponly=True,
            samesite="lax",
            secure=self.flow.redirect_uri.startswith("https://"),
        )
        return response

    async def connect(self, request: Request) -> Response:
        form = await self.checked_form(request)
        login_id = form.get("login_id", "")[:128]
        try:
            started = await self.flow.start(browser=True, login_hint=login_id)
        except OAuthError as exc:
            return _page("Cannot connect", f"<p class=error>{html.escape(str(exc))}</p>", 409)
        return self.to_venue(started)

    async def begin(self, request: Request) -> Response:
        try:
            started = await self.flow.begin(request.query_params.get("ticket", ""))
        except OAuthError as exc:
            return _page(
                "Connection failed", f"<p class=error id=error>{html.escape(str(exc))}</p>", 400
            )
        return self.to_venue(started)

    async def disconnect(self, login_id: str, request: Request) -> Response:
        await self.checked_form(request)
        try:
            await self.manager.disconnect(login_id)
        except UnknownLogin as exc:
            return _page("Unknown login", f"<p class=error>{html.escape(str(exc))}</p>", 404)
        return RedirectResponse(
            f"/ui?disconnected={quote(login_id)}", status_code=status.HTTP_303_SEE_OTHER
        )

    async def callback(self, request: Request) -> Response:
        q = request.query_params
        try:
            done = await self.flow.finish_returning(
                state=q.get("state", ""),
                code=q.get("code"),
                error=q.get("error"),
                browser_nonce=request.cookies.get(BINDING_COOKIE),
            )
        except OAuthError as exc:
            log.warning("OAuth callback refused: %s", exc)
            back = html.escape(exc.return_to or "/ui", quote=True)
            response: Response = _page(
                "Connection failed",
                f"<p class=error id=error>{html.escape(str(exc))}</p>"
                f'<p><a href="{back}" id=back>Back to the logins</a></p>',
                400,
            )
        else:
            login = done.login
            log.info("OAuth: login %s linked %d accounts", login.login_id, len(done.accounts))
            base = done.return_to or "/ui"
            joiner = "&" if urlsplit(base).query else "?"
            response = RedirectResponse(
                f"{base}{joiner}connected={quote(login.login_id)}",
                status_code=status.HTTP_303_SEE_OTHER,
            )
        response.delete_cookie(BINDING_COOKIE, path="/oauth/callback")
        return response
