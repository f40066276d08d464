"""OAuth authorization-code flow, as Tradovate runs it (docs/tradovate-protocol.md §2.4).

- ``GET /oauth?response_type=code&client_id=&redirect_uri=&state=[&code_challenge=
  &code_challenge_method=S256]`` (at the server root, like ``trader.tradovate.com/oauth``)
  renders a small login form: inputs ``username`` and ``password``, the query fields as hidden
  inputs, and a submit button with id ``authorize``.
- ``POST /oauth`` with that form: valid credentials → 302 to
  ``redirect_uri?code=<single-use code>&state=<state>``; wrong credentials → the form again
  with an error (200). An unknown client, a ``redirect_uri`` not registered for it (exact
  match) or a ``response_type`` other than ``code`` → a 400 page, never a redirect.
- ``POST /auth/oauthtoken`` and ``POST /v1/auth/oauthtoken`` (both paths exist in Tradovate's
  own docs), form-encoded (the official example) or JSON: ``grant_type=authorization_code,
  code, redirect_uri, client_id, client_secret[, code_verifier]`` →
  ``{"access_token", "token_type": "bearer", "expires_in"}``. Failures answer
  ``{"error", "error_description"}`` with status ``sim_oauth_error_status`` (default 200: the
  swagger's single response schema carries ``error``, and the official example checks
  ``token_data.error``). Errors: ``invalid_request`` (missing field), ``unsupported_grant_type``,
  ``invalid_client`` (unknown client or wrong secret), ``invalid_grant`` (unknown, used or
  expired code, other client or redirect_uri, PKCE verifier mismatch).

Codes are single-use (the first exchange attempt consumes them) and expire after
``sim_oauth_code_ttl_s``. The access token is a normal venue session: it counts toward the
2-session rule and works for ``auth/me``, ``account/list``, ``renewaccesstoken`` and the socket.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from phalanx_sim.state import OAuthClient, OAuthCode
from phalanx_sim.venue import Venue

__all__ = ["OAuthClient", "OAuthCode", "oauth_routes", "pkce_challenge"]

_encoder = msgspec.json.Encoder()
_HIDDEN = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
)


def pkce_challenge(verifier: str, method: str = "S256") -> str:
    """The PKCE ``code_challenge`` of a verifier (``S256`` or ``plain``)."""
    if method.upper() == "PLAIN":
        return verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _form(fields: dict[str, str], error: str = "") -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(fields[name])}">'
        for name in _HIDDEN
        if fields.get(name)
    )
    message = f'<p class="error" id="error">{html.escape(error)}</p>' if error else ""
    return _page(
        "Sign in to authorize " + fields.get("client_id", ""),
        f'{message}<form method="post" action="/oauth">{hidden}'
        '<label>Username <input name="username" autocomplete="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit" id="authorize">Authorize</button></form>',
    )


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def oauth_routes(venue: Venue) -> list[Route]:
    """Routes of the authorize page (``/oauth``) and the code exchange (both paths)."""

    async def authorize_page(request: Request) -> Response:
        return _authorize_page(venue, request)

    async def authorize_submit(request: Request) -> Response:
        return await _authorize_submit(venue, request)

    async def token(request: Request) -> Response:
        return await _token(venue, request)

    return [
        Route("/oauth", authorize_page, methods=["GET"]),
        Route("/oauth", authorize_submit, methods=["POST"]),
        Route("/auth/oauthtoken", token, methods=["POST"]),
        Route("/v1/auth/oauthtoken", token, methods=["POST"]),
    ]


def _client_problem(venue: Venue, fields: dict[str, str]) -> str | None:
    if fields.get("response_type") != "code":
        return "unsupported response_type (only 'code')"
    client = venue.state.oauth_clients.get(fields.get("client_id", ""))
    if client is None:
        return "unknown client_id"
    if fields.get("redirect_uri", "") not in client.redirect_uris:
        return "redirect_uri is not registered for this client"
    return None


def _authorize_page(venue: Venue, request: Request) -> Response:
    fields = dict(request.query_params)
    problem = _client_problem(venue, fields)
    if problem is not None:
        return _page("Authorization error", f"<p>{html.escape(problem)}</p>", 400)
    return _form(fields)


async def _authorize_submit(venue: Venue, request: Request) -> Response:
    raw = (await request.body()).decode(errors="replace")
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    problem = _client_problem(venue, fields)
    if problem is not None:
        return _page("Authorization error", f"<p>{html.escape(problem)}</p>", 400)
    record = venue.state.users_by_name.get(fields.get("username", ""))
    if record is None or record.password != fields.get("password"):
        return _form(fields, "Incorrect username or password. Please try again.")
    method = fields.get("code_challenge_method") or None
    code = OAuthCode(
        code=secrets.token_urlsafe(24),
        client_id=fields["client_id"],
        redirect_uri=fields["redirect_uri"],
        user_id=record.user.id,
        expires_at=venue.clock.time() + venue.settings.sim_oauth_code_ttl_s,
        code_challenge=fields.get("code_challenge") or None,
        code_challenge_method=method if not method else method.upper(),
    )
    venue.state.oauth_codes[code.code] = code
    params = {"code": code.code}
    if fields.get("state"):
        params["state"] = fields["state"]
    return RedirectResponse(_with_query(code.redirect_uri, params), status_code=302)


class _Refused(Exception):
    """The code exchange refused: an OAuth ``error`` and its description."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


async def _token(venue: Venue, request: Request) -> Response:
    try:
        fields = _token_fields(await request.body())
        venue.record("auth/oauthtoken", None, "rest", 200)
        code = _redeem(venue, fields)
        record = venue.state.users.get(code.user_id)
        if record is None:
            raise _Refused("invalid_grant", "user no longer exists")
    except _Refused as exc:
        return Response(
            _encoder.encode({"error": exc.code, "error_description": exc.description}),
            status_code=venue.settings.sim_oauth_error_status,
            media_type="application/json",
        )
    session = venue.issue_session(record)
    expires_in = max(0, int(session.expires_at - venue.clock.time()))
    return Response(
        _encoder.encode(
            {"access_token": session.token, "token_type": "bearer", "expires_in": expires_in}
        ),
        media_type="application/json",
    )


def _token_fields(raw: bytes) -> dict[str, Any]:
    """The exchange's fields, from a JSON object or a form."""
    if not raw.lstrip().startswith(b"{"):
        return dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise _Refused("invalid_request", "body is not valid JSON") from exc
    if not isinstance(decoded, dict):
        raise _Refused("invalid_request", "body must be an object")
    return {k: str(v) for k, v in decoded.items() if v is not None}


def _redeem(venue: Venue, fields: dict[str, Any]) -> OAuthCode:
    """The code the fields redeem (taken: single use), else :class:`_Refused`."""
    for name in ("grant_type", "code", "redirect_uri", "client_id", "client_secret"):
        if not fields.get(name):
            raise _Refused("invalid_request", f"{name} is required")
    if fields["grant_type"] != "authorization_code":
        raise _Refused("unsupported_grant_type", "only authorization_code is supported")
    client = venue.state.oauth_clients.get(fields["client_id"])
    if client is None or not secrets.compare_digest(client.client_secret, fields["client_secret"]):
        raise _Refused("invalid_client", "unknown client or wrong client_secret")
    code = venue.state.oauth_codes.pop(fields["code"], None)
    if code is None:
        raise _Refused("invalid_grant", "unknown or already used code")
    if code.expires_at <= venue.clock.time():
        raise _Refused("invalid_grant", "code expired")
    if code.client_id != client.client_id or code.redirect_uri != fields["redirect_uri"]:
        raise _Refused("invalid_grant", "code was issued to another client or redirect_uri")
    _check_verifier(code, fields.get("code_verifier", ""))
    return code


def _check_verifier(code: OAuthCode, verifier: str) -> None:
    """PKCE: the verifier must match the code's challenge, when it has one."""
    if code.code_challenge is None:
        return
    method = code.code_challenge_method or "PLAIN"
    if not verifier or not secrets.compare_digest(
        pkce_challenge(verifier, method), code.code_challenge
    ):
        raise _Refused("invalid_grant", "code_verifier does not match code_challenge")
