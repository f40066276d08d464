"""Login endpoints: ``auth/accessTokenRequest``, ``auth/renewAccessToken``, ``auth/me``, and
``user/syncRequest`` over REST (the socket's sync also subscribes: ``ws.py``)."""

from __future__ import annotations

from phalanx_sim.endpoints.params import decode_body
from phalanx_sim.replies import Reply
from phalanx_sim.routes import PublicRoute, RouteTable, SessionRoute
from phalanx_sim.schemas import (
    AccessTokenRequest,
    AccessTokenResponse,
    ErrorText,
    SyncRequestBody,
)
from phalanx_sim.snapshots import build_snapshot
from phalanx_sim.state import Session, UserRecord
from phalanx_sim.times import iso_from_epoch
from phalanx_sim.venue_core import VenueCore

__all__ = ["auth_routes"]


def _access_token_request(venue: VenueCore, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body, AccessTokenRequest)
    record = venue.state.users_by_name.get(request.name)
    if record is None or record.password != request.password:
        return Reply(200, ErrorText(errorText="Incorrect username or password. Please try again."))
    return _issue_token(venue, record, None)


def _issue_token(venue: VenueCore, record: UserRecord, session_id: int | None) -> Reply:
    session = venue.issue_session(record, session_id)
    now = venue.clock.time()
    response = AccessTokenResponse(
        accessToken=session.token,
        mdAccessToken=session.md_token,
        expirationTime=iso_from_epoch(session.expires_at),
        passwordExpirationTime=iso_from_epoch(now + 365 * 86400.0),
        userStatus="Active",
        userId=record.user.id,
        name=record.user.name,
        hasLive=False,
    )
    return Reply(200, response, record.user.id)


def _renew_access_token(venue: VenueCore, session: Session, _q: str, _b: bytes | str) -> Reply:
    return _issue_token(venue, venue.user_of(session), session.session_id)


def _me(venue: VenueCore, session: Session, _q: str, _b: bytes | str) -> Reply:
    user = venue.user_of(session).user
    return Reply(
        200,
        {
            "userId": user.id,
            "name": user.name,
            "fullName": user.name,
            "email": user.email,
            "emailVerified": True,
            "isTrial": False,
        },
    )


def _sync_request(venue: VenueCore, session: Session, _q: str, body: bytes | str) -> Reply:
    request = decode_body(body or b"{}", SyncRequestBody)
    data, _ = build_snapshot(venue, session, request)
    return Reply(200, data)


def auth_routes() -> RouteTable:
    """The login endpoints (only ``auth/accessTokenRequest`` works without a token)."""
    return {
        "auth/accesstokenrequest": PublicRoute(_access_token_request),
        "auth/renewaccesstoken": SessionRoute(_renew_access_token),
        "auth/me": SessionRoute(_me),
        "user/syncrequest": SessionRoute(_sync_request),
    }
