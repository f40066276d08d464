"""Typed route records: a public endpoint gets no session, a session endpoint always gets one.

:meth:`~phalanx_sim.venue.Venue.handle` answers 401 before a :class:`SessionRoute` runs without
a token, so its handler is typed with a :class:`~phalanx_sim.state.Session` (never ``None``);
a :class:`PublicRoute` handler (``auth/accessTokenRequest``) has no session parameter at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phalanx_sim.replies import Reply
from phalanx_sim.state import Session
from phalanx_sim.venue_core import VenueCore

__all__ = [
    "PublicHandler",
    "PublicRoute",
    "Route",
    "RouteTable",
    "SessionHandler",
    "SessionRoute",
]

#: ``(venue, query, body)``: an endpoint that works without a token
PublicHandler = Callable[[VenueCore, str, bytes | str], Reply]
#: ``(venue, session, query, body)``: an endpoint of a logged-in session
SessionHandler = Callable[[VenueCore, Session, str, bytes | str], Reply]


@dataclass(frozen=True, slots=True)
class PublicRoute:
    """An endpoint served without a token."""

    handler: PublicHandler


@dataclass(frozen=True, slots=True)
class SessionRoute:
    """An endpoint that needs a live session (401 ``Access is denied`` without one)."""

    handler: SessionHandler


Route = PublicRoute | SessionRoute
#: lower-case endpoint name (``order/placeoso``) → its route
RouteTable = dict[str, Route]
