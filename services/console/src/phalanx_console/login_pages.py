"""Signing in and out, and the logins and accounts page (auth's admin API).

- ``GET /login``, ``POST /login`` (form ``user``, ``password``; the ``Origin`` must be this
  console's): a new session and its cookie, then 303 to ``/strategies``; a wrong name or
  password is one message for both; an address with too many failures waits (429);
- ``POST /logout`` (CSRF token): the session ends and its cookie is cleared;
- ``GET /logins``: every broker login (status, how connected, token expiry) with its accounts
  and its venue request budget in use (the executor's ``/admin/budgets``: permits used per
  window, penalty or lockout time left); ``?connected=<id>`` (auth's OAuth callback coming
  back through ``GET /logins/connected``, which needs no session and only forwards: the
  venue's redirect chain is cross-site, so the session cookie comes back on the next step)
  says the login is connected when it is listed;
- ``POST /logins/connect`` (admin, CSRF; ``login_id`` to reconnect one, empty for a new login):
  auth starts an OAuth consent bound to this browser (``POST /admin/oauth/start`` with
  ``browser: true`` and this page as ``return_to``); the answer is a page that sends the browser
  to auth's single-use ``/oauth/begin`` link, which sets the binding cookie on the callback's
  host and goes on to Tradovate's consent page (ADR-0135);
- ``POST /logins/{id}/disconnect`` (admin, confirm box): auth forgets the login's token and
  credentials and unlinks its accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from phalanx_console.backends import AdminApis, BackendError
from phalanx_console.guards import (
    COOKIE,
    Forbidden,
    admin_form,
    first,
    read_form,
    same_origin,
    signed_in,
)
from phalanx_console.render import Renderer
from phalanx_console.sessions import Session, SessionStore
from phalanx_console.throttle import SignInThrottle
from phalanx_console.users import Users

__all__ = ["login_router"]


def login_router(
    apis: AdminApis,
    renderer: Renderer,
    users: Users,
    sessions: SessionStore,
    cookie_secure: bool,
    ttl_s: float,
    throttle: SignInThrottle,
    on_sign_in: Callable[[bool], None] = lambda ok: None,
    public_url: str = "",
) -> APIRouter:
    """The sign-in routes and the logins page."""
    router = APIRouter()
    _sign_in_routes(router, renderer, users, sessions, cookie_secure, ttl_s, throttle, on_sign_in)
    _logins_routes(router, apis, renderer)
    _oauth_connect_routes(router, apis, renderer, public_url)
    return router


def _sign_in_routes(
    router: APIRouter,
    renderer: Renderer,
    users: Users,
    sessions: SessionStore,
    cookie_secure: bool,
    ttl_s: float,
    throttle: SignInThrottle,
    on_sign_in: Callable[[bool], None],
) -> None:
    """``/login`` (the page and the form) and ``/logout``."""

    @router.get("/login")
    async def login_page(request: Request) -> HTMLResponse:
        return renderer.page("login.html", session=None, error="", user="")

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not same_origin(request):
            raise Forbidden("the sign-in did not come from this console's page")
        address = request.client.host if request.client else ""
        wait_s = throttle.retry_after_s(address)
        if wait_s > 0:
            on_sign_in(False)
            refused = renderer.page(
                "login.html",
                status_code=429,
                session=None,
                error=f"too many wrong passwords from here; try again in {int(wait_s) + 1} s",
                user="",
            )
            refused.headers["Retry-After"] = str(int(wait_s) + 1)
            return refused
        form = await read_form(request)
        name = first(form, "user")
        user = users.authenticate(name, (form.get("password") or [""])[0])
        on_sign_in(user is not None)
        if user is None:
            throttle.failed(address)
            return renderer.page(
                "login.html",
                status_code=401,
                session=None,
                error="wrong user name or password",
                user=name,
            )
        throttle.succeeded(address)
        sessions.close(request.cookies.get(COOKIE))
        session = sessions.open(user.name, user.role)
        resp = RedirectResponse("/strategies", 303)
        resp.set_cookie(
            COOKIE,
            session.session_id,
            max_age=int(ttl_s),
            path="/",
            secure=cookie_secure,
            httponly=True,
            samesite="strict",
        )
        return resp

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = signed_in(request)
        if not same_origin(request):
            raise Forbidden("the request did not come from this console's pages")
        form = await read_form(request)
        if not session.csrf_matches(first(form, "csrf")):
            raise Forbidden("missing or wrong CSRF token; reload the page")
        sessions.close(session.session_id)
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(COOKIE, path="/", secure=cookie_secure, httponly=True, samesite="strict")
        return resp


def _logins_routes(router: APIRouter, apis: AdminApis, renderer: Renderer) -> None:
    """``/logins``: the page and disconnecting a login."""

    @router.get("/logins")
    async def show_logins(request: Request) -> HTMLResponse:
        return await _logins_page(apis, renderer, request, signed_in(request))

    @router.post("/logins/{login_id}/disconnect")
    async def disconnect(request: Request, login_id: str) -> Response:
        session, form = await admin_form(request)
        if login_id in (".", ".."):
            return await _logins_page(apis, renderer, request, session, "no such login", 404)
        if first(form, "confirm") != "on":
            return await _logins_page(
                apis, renderer, request, session, "tick the box to confirm", 422
            )
        try:
            await apis.call("auth", "DELETE", f"/admin/logins/{quote(login_id, safe='')}")
        except BackendError as exc:
            return await _logins_page(
                apis, renderer, request, session, f"auth refused: {exc.detail}", 422
            )
        return RedirectResponse(f"/logins?ok=disconnected+{quote(login_id)}", 303)


def _oauth_connect_routes(
    router: APIRouter, apis: AdminApis, renderer: Renderer, public_url: str
) -> None:
    """Connecting a login by OAuth: handing the consent to auth, and landing back."""

    @router.post("/logins/connect")
    async def connect(request: Request) -> Response:
        session, form = await admin_form(request)
        login_id = first(form, "login_id")
        if len(login_id) > 128:
            return await _logins_page(apis, renderer, request, session, "no such login", 404)
        try:
            started = await apis.call(
                "auth",
                "POST",
                "/admin/oauth/start",
                {
                    "login_id": login_id or None,
                    "browser": True,
                    "return_to": f"{(public_url or str(request.base_url)).rstrip('/')}"
                    "/logins/connected",
                },
            )
        except BackendError as exc:
            return await _logins_page(
                apis, renderer, request, session, f"auth refused: {exc.detail}", 409
            )
        browser_url = (started or {}).get("browser_url")
        if not isinstance(browser_url, str) or not browser_url.startswith(("http://", "https://")):
            return await _logins_page(
                apis,
                renderer,
                request,
                session,
                "auth does not hand OAuth consents to the console",
                502,
            )
        # a page, not a 303: the console's CSP (form-action 'self') forbids a form's redirect
        # to another origin; a refresh and a link are plain navigations
        return renderer.page(
            "oauth_continue.html",
            session=session,
            browser_url=browser_url,
            login_id=login_id,
            error="",
            notice="",
        )

    @router.get("/logins/connected")
    async def connected(request: Request) -> HTMLResponse:
        # auth's callback lands here after the venue's page: a cross-site chain, so the browser
        # withholds the SameSite=Strict session cookie; this page (no session, no data) goes on
        # to the logins page by itself, a same-site navigation that carries the cookie
        login_id = request.query_params.get("connected", "")[:128]
        return renderer.page(
            "oauth_landing.html", session=None, login_id=login_id, error="", notice=""
        )


async def _logins_page(
    apis: AdminApis,
    renderer: Renderer,
    request: Request,
    session: Session,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    """The logins page, with the budget each login has used and an error or notice."""
    logins = await apis.get("auth", "/admin/logins")
    logins.sort(key=lambda login: login["login_id"])
    try:
        budgets = {
            b["login_id"]: b for b in (await apis.get("executor", "/admin/budgets"))["logins"]
        }
    except BackendError:
        budgets = {}  # an executor without the route, or none reachable: no budget column
    notice = request.query_params.get("ok", "")
    connected = request.query_params.get("connected", "")
    if connected and any(login["login_id"] == connected for login in logins):
        notice = f"Connected login {connected}"  # only a login auth lists: no text injection
    return renderer.page(
        "logins.html",
        status_code=status,
        session=session,
        logins=logins,
        budgets=budgets,
        account_page=f"{apis.urls['auth']}/ui",
        error=error,
        notice=notice,
    )
