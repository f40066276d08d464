"""Why the venue steps of an intent stopped before it was accepted (the worker's control flow).

Each says what the worker does with the claim: :class:`Unknown` — something was sent and its
outcome is unknown (reconcile by ``clOrdId``); :class:`Expired` — the deadline passed before a
send; :class:`NotSent` and :class:`HandBack` — nothing was sent (release the claim; the batch
comes back); :class:`FailedBeforeSending` — an unexpected error before any send (release, then
raise it); :class:`RefusedStep` — the venue state or answer ends the intent (rejected).
"""

from __future__ import annotations

__all__ = ["Expired", "FailedBeforeSending", "HandBack", "NotSent", "RefusedStep", "Unknown"]


class Unknown(Exception):
    """A request was sent and its outcome is unknown."""


class Expired(Exception):
    """The intent's signal passed its deadline before a request was sent."""


class NotSent(Exception):
    """Nothing could be sent (no socket or token); the claim may be released."""


class HandBack(Exception):
    """Nothing was sent and the intent goes back (the replica stops, or no permit for long)."""


class FailedBeforeSending(Exception):
    """An unexpected error (e.g. Redis down) happened before any request was sent."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class RefusedStep(Exception):
    """A step found the venue state did not allow going on (e.g. reversal not flat in time)."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
