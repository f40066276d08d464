"""The import contract: which top-level Phalanx packages each package's source may import.

- a service (every ``services/*/src/phalanx_*``, present or future) imports only itself and the
  libraries ``phalanx_common`` and ``phalanx_tradovate``: services never import each other
  (shared code goes to ``libs/common``), and never the simulator, the bench or test helpers;
- ``phalanx_common`` imports only itself; ``phalanx_tradovate`` and ``phalanx_testing`` only
  themselves and ``phalanx_common``: libraries never import services;
- the simulator imports only itself and ``phalanx_common`` (it stands in for the venue, so it
  shares nothing with the client that talks to it);
- the bench may drive everything (it starts the services in-process), and nothing imports it.

Only ``src`` trees are checked, every import statement anywhere in a module (also inside
functions and ``TYPE_CHECKING`` blocks). Tests may import what they need.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBS = frozenset({"phalanx_common", "phalanx_tradovate", "phalanx_testing"})


def source_roots() -> dict[str, Path]:
    """Top-level package name → its directory, for every package of the workspace."""
    roots: dict[str, Path] = {}
    for pattern in ("libs/*/src/phalanx_*", "services/*/src/phalanx_*", "sim/src/phalanx_*"):
        for path in sorted(ROOT.glob(pattern)):
            if path.is_dir():
                roots[path.name] = path
    for path in sorted(ROOT.glob("bench/src/phalanx_*")):
        roots[path.name] = path
    return roots


def service_packages() -> frozenset[str]:
    return frozenset(p.name for p in ROOT.glob("services/*/src/phalanx_*") if p.is_dir())


def allowed_imports(package: str) -> frozenset[str] | None:
    """The Phalanx packages ``package`` may import (``None``: any)."""
    if package in service_packages():
        return frozenset({package, "phalanx_common", "phalanx_tradovate"})
    fixed: dict[str, frozenset[str]] = {
        "phalanx_common": frozenset({"phalanx_common"}),
        "phalanx_tradovate": frozenset({"phalanx_tradovate", "phalanx_common"}),
        "phalanx_testing": frozenset({"phalanx_testing", "phalanx_common"}),
        "phalanx_sim": frozenset({"phalanx_sim", "phalanx_common"}),
    }
    if package == "phalanx_bench":
        return None
    return fixed[package]


def imported_packages(source: str) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute ``phalanx_*`` import in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top.startswith("phalanx_"):
                yield node.lineno, top


def violations(package: str, path: Path) -> list[str]:
    allowed = allowed_imports(package)
    if allowed is None:
        return []
    found: list[str] = []
    for module in sorted(path.rglob("*.py")):
        for line, top in imported_packages(module.read_text(encoding="utf-8")):
            if top not in allowed:
                found.append(f"{module.relative_to(path.parent)}:{line} imports {top}")
    return found


ROOTS = source_roots()


def test_every_workspace_package_is_known() -> None:
    assert {"phalanx_common", "phalanx_tradovate", "phalanx_testing", "phalanx_sim"} <= set(ROOTS)
    assert {"phalanx_ingest", "phalanx_auth", "phalanx_executor", "phalanx_ledger"} <= set(
        service_packages()
    )
    for package in ROOTS:
        allowed_imports(package)  # a package without a rule fails here (KeyError)


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_package_imports_only_what_the_contract_allows(package: str) -> None:
    assert violations(package, ROOTS[package]) == []


def test_nothing_imports_the_bench() -> None:
    for package, path in ROOTS.items():
        if package == "phalanx_bench":
            continue
        for module in path.rglob("*.py"):
            tops = {top for _, top in imported_packages(module.read_text(encoding="utf-8"))}
            assert "phalanx_bench" not in tops, module


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import phalanx_ledger.store\n", [(1, "phalanx_ledger")]),
        ("from phalanx_auth.logins import LoginManager\n", [(1, "phalanx_auth")]),
        ("def f():\n    from phalanx_sim import Simulator\n", [(2, "phalanx_sim")]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import phalanx_ingest\n",
            [(3, "phalanx_ingest")],
        ),
        ("from . import sibling\nfrom .x import y\nimport os\n", []),
    ],
)
def test_the_checker_sees_every_form_of_import(
    source: str, expected: list[tuple[int, str]]
) -> None:
    assert list(imported_packages(source)) == expected


def test_a_service_importing_another_service_is_a_violation(tmp_path: Path) -> None:
    fake = tmp_path / "phalanx_ingest"
    fake.mkdir()
    (fake / "leak.py").write_text("from phalanx_executor.planner import plan\n")
    (fake / "ok.py").write_text("from phalanx_common import subjects\nimport phalanx_tradovate\n")
    assert violations("phalanx_ingest", fake) == [
        "phalanx_ingest/leak.py:1 imports phalanx_executor"
    ]
    assert violations("phalanx_common", fake) == [
        "phalanx_ingest/leak.py:1 imports phalanx_executor",
        "phalanx_ingest/ok.py:2 imports phalanx_tradovate",
    ]
