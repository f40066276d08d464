"""Phalanx ingest: the TradersPost-compatible webhook API, strategies and their subscriptions.

A webhook is authenticated by its strategy id and secret, validated, given a deterministic signal
id, and published as ``SignalReceived`` to JetStream; the sender gets a 2xx only after the
stream acknowledged it.
"""

from phalanx_ingest.service import IngestService, build_ingest
from phalanx_ingest.settings import IngestSettings

__all__ = ["IngestService", "IngestSettings", "build_ingest"]
