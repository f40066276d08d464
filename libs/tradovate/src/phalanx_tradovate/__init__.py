"""Tradovate REST and WebSocket client: the only code in Phalanx that knows the wire format.

- :mod:`phalanx_tradovate.wire`: request/response/entity structs, cased as Tradovate names them.
- :mod:`phalanx_tradovate.frames`: the SockJS-style framing of the WebSocket API.
- :mod:`phalanx_tradovate.errors`: typed errors with ``retry_safe``.
- :mod:`phalanx_tradovate.classes`: every error in one class (final, retryable, unknown).
- :mod:`phalanx_tradovate.rest`: :class:`TradovateRest`.
- :mod:`phalanx_tradovate.ws`: :class:`TradovateSocket` and :class:`ReconnectingSocket`.
"""

from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    LockoutError,
    OrderRejected,
    PenaltyError,
    ProtocolError,
    RequestTimeout,
    TradovateError,
    VenueError,
    VenueUnreachable,
)
from phalanx_tradovate.frames import PropsEvent
from phalanx_tradovate.reconnecting import ReconnectingSocket
from phalanx_tradovate.rest import TradovateRest
from phalanx_tradovate.wire import DEFAULT_ENTITY_TYPES, SyncSnapshot
from phalanx_tradovate.ws import TradovateSocket

__all__ = [
    "DEFAULT_ENTITY_TYPES",
    "AuthError",
    "ConnectionLost",
    "LockoutError",
    "OrderRejected",
    "PenaltyError",
    "PropsEvent",
    "ProtocolError",
    "ReconnectingSocket",
    "RequestTimeout",
    "SyncSnapshot",
    "TradovateError",
    "TradovateRest",
    "TradovateSocket",
    "VenueError",
    "VenueUnreachable",
]
