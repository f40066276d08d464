"""Error types shared by services, and how a consumer should treat each."""

from __future__ import annotations

__all__ = ["DependencyUnavailable", "PhalanxError", "Poison", "Retry"]


class PhalanxError(Exception):
    """Base of Phalanx's own errors."""


class DependencyUnavailable(PhalanxError):
    """A server the service needs (NATS, Redis, the venue) cannot be reached."""

    def __init__(self, what: str, address: str, cause: BaseException | None = None) -> None:
        detail = f": {cause}" if cause else ""
        super().__init__(f"cannot reach {what} at {address}{detail}")
        self.what = what
        self.address = address


class Retry(PhalanxError):
    """Handler outcome: the message could not be processed now; redeliver after ``delay_s``."""

    def __init__(self, reason: str, delay_s: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


class Poison(PhalanxError):
    """Handler outcome: the message can never be processed; terminate it and record why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
