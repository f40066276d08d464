"""The wire tag of every event is pinned: renaming a class must not change what is on the bus.

Every event in the catalog declares its tag explicitly (``tag="..."``). This file is the
record of the tags in use; a changed or missing tag fails here before any stored message or
other replica is confused by it.
"""

from __future__ import annotations

import ast
import inspect
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from phalanx_common import events
from phalanx_common.events import AnyEvent, Event, IntentEvent

# The wire tags as they were when each event was introduced (then the class name).
PINNED_TAGS: dict[str, str] = {
    "SignalReceived": "SignalReceived",
    "ExecBatch": "ExecBatch",
    "SignalPlanned": "SignalPlanned",
    "IntentSkipped": "IntentSkipped",
    "IntentExpired": "IntentExpired",
    "OrderAccepted": "OrderAccepted",
    "OrderRejected": "OrderRejected",
    "OrderOutcomeUnknown": "OrderOutcomeUnknown",
    "FillReceived": "FillReceived",
    "PositionReported": "PositionReported",
    "AccountLinked": "AccountLinked",
    "AccountUnlinked": "AccountUnlinked",
    "TokenRenewed": "TokenRenewed",
    "ReauthRequired": "ReauthRequired",
    "TradingStateChanged": "TradingStateChanged",
    "KillSwitchEngaged": "KillSwitchEngaged",
    "FlattenCompleted": "FlattenCompleted",
    "MessageTerminated": "MessageTerminated",
    "PositionDrift": "PositionDrift",
    "FillFees": "FillFees",
}

EVENT_CLASSES: list[type[Event]] = list(typing.get_args(AnyEvent))


def _all_event_subclasses() -> set[type[Event]]:
    found: set[type[Event]] = set()
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == events.__name__ and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def test_every_event_of_the_catalog_is_pinned() -> None:
    assert sorted(cls.__name__ for cls in EVENT_CLASSES) == sorted(PINNED_TAGS)


def test_every_concrete_event_is_in_the_decodable_union() -> None:
    concrete = _all_event_subclasses() - {IntentEvent}
    assert concrete == set(EVENT_CLASSES)


def _declared_tags() -> dict[str, str | None]:
    """Class name → the ``tag=`` written in its class statement in the catalog's source."""
    tree = ast.parse(Path(inspect.getfile(events)).read_text(encoding="utf-8"))
    declared: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            tag = next((k.value for k in node.keywords if k.arg == "tag"), None)
            value = tag.value if isinstance(tag, ast.Constant) else None
            declared[node.name] = value if isinstance(value, str) else None
    return declared


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_each_event_declares_its_pinned_tag_explicitly(cls: type[Event]) -> None:
    # Written in the class statement itself, so it does not follow the class name.
    assert _declared_tags()[cls.__name__] == PINNED_TAGS[cls.__name__]
    config = cls.__struct_config__
    assert (config.tag, config.tag_field) == (PINNED_TAGS[cls.__name__], "type")


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.__name__)
def test_the_tag_is_what_goes_on_the_wire(cls: type[Event]) -> None:
    fields = msgspec.structs.fields(cls)
    required: dict[str, Any] = {f.name: _sample(f.type) for f in fields if f.required}
    encoded = msgspec.json.encode(cls(**required))
    assert msgspec.json.decode(encoded)["type"] == PINNED_TAGS[cls.__name__]
    decoded = msgspec.json.decode(encoded, type=AnyEvent)
    assert type(decoded) is cls


def test_an_event_without_an_explicit_tag_would_take_its_class_name() -> None:
    # Why every event spells its tag out: under the tag=True base, msgspec tags a subclass with
    # its class name, so a rename would change the wire format.
    class Unpinned(Event, frozen=True, kw_only=True):
        pass

    assert Unpinned.__struct_config__.tag == "Unpinned"


def _sample(annotation: object) -> object:
    """A valid value for a required field of an event (only the tag is under test)."""
    hints = {int: 0, str: "x", bool: False}
    if annotation in hints:
        return hints[annotation]
    origin = typing.get_origin(annotation)
    if origin is list:
        return []
    if origin is tuple:
        return ()
    if origin is dict:
        return {}
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if args:
        return _sample(args[0])
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        inner = {f.name: _sample(f.type) for f in msgspec.structs.fields(annotation) if f.required}
        return annotation(**inner)
    if annotation is Decimal:
        return Decimal("1")
    raise AssertionError(f"no sample value for {annotation!r}")
