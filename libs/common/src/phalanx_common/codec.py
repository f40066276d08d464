"""One encoder and the decoders, built once per process."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from phalanx_common.events import AnyEvent

__all__ = ["decode", "decode_event", "encode"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder(decimal_format="string")
_event_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyEvent)
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def encode(obj: msgspec.Struct | Any) -> bytes:
    """Encode an event or record as JSON."""
    return _encoder.encode(obj)


def decode_event(data: bytes) -> AnyEvent:
    """Decode any event of the catalog by its tag.

    Raises:
        msgspec.DecodeError: if the bytes are not a known, valid event.
    """
    event: AnyEvent = _event_decoder.decode(data)
    return event


def decode(data: bytes, type_: type[T]) -> T:
    """Decode bytes into a given struct type (decoders are cached per type)."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = msgspec.json.Decoder(type_)
        _decoders[type_] = decoder
    value: T = decoder.decode(data)
    return value
