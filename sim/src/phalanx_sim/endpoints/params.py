"""Reading a request: a JSON body into its schema, query parameters (names case-insensitive)."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qsl

import msgspec

__all__ = ["decode_body", "ids_param", "int_param", "query_params"]

T = TypeVar("T")

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode_body(body: bytes | str, type_: type[T]) -> T:
    """A request body decoded into ``type_`` (raises ``msgspec`` errors: a 400 reply)."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    value: T = decoder.decode(body)
    return value


def query_params(query: str) -> dict[str, str]:
    """The query string's parameters, names in lower case."""
    return {key.lower(): value for key, value in parse_qsl(query)}


def int_param(query: str, name: str) -> int | None:
    """An integer parameter, or ``None`` when absent or not a number."""
    value = query_params(query).get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def ids_param(query: str, name: str) -> list[int]:
    """A comma-separated list of ids (anything not a number is skipped)."""
    value = query_params(query).get(name, "")
    return [int(part) for part in value.split(",") if part.strip().isdigit()]
