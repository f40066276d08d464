"""Events are built with named fields, never from ``**`` a dict (issue 16, ADR-0177).

A ``dict[str, Any]`` spread into an event's constructor hides a misspelt or missing field from
the type checker until the event is built at run time. The builders of
``phalanx_common.intent_events`` name every field instead. This test walks every ``src`` tree and
fails on a call of a struct of the events catalog with a ``**`` argument.

"""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest

from phalanx_common import events

ROOT = Path(__file__).resolve().parents[2]
SOURCE_TREES = ("libs/*/src", "services/*/src", "sim/src", "bench/src")
CATALOG = frozenset(
    name
    for name, value in vars(events).items()
    if isinstance(value, type) and issubclass(value, msgspec.Struct)
)


def spread_calls(source: str) -> set[str]:
    """The catalog structs ``source`` calls with a ``**`` argument."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else ""
        )
        if name in CATALOG and any(keyword.arg is None for keyword in node.keywords):
            found.add(name)
    return found


def test_the_check_sees_a_spread_and_not_named_fields() -> None:
    assert spread_calls("OrderRejected(**about, reason='x')") == {"OrderRejected"}
    assert spread_calls("events.FillFees(event_id='e', **parts)") == {"FillFees"}
    assert spread_calls("OrderRejected(event_id='e', reason='x')") == set()
    assert spread_calls("dict(**parts)") == set()


MODULES = [m for pattern in SOURCE_TREES for t in ROOT.glob(pattern) for m in t.rglob("*.py")]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.relative_to(ROOT).as_posix())
def test_no_event_is_built_from_a_spread_dict(module: Path) -> None:
    name = module.relative_to(ROOT).as_posix()
    found = spread_calls(module.read_text(encoding="utf-8"))
    assert not found, f"{name} builds {sorted(found)} from **: name the fields"
