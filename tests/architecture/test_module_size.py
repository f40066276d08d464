"""Small rooms: no source module over 500 lines (issue 16, ADR-0156).

Every ``.py`` file under a ``src`` tree of the workspace (libraries, services, simulator, bench)
has at most :data:`LIMIT` lines. The modules named in :data:`SHRINK_ONLY` are today's remaining
offenders, each with the line count it has now as its ceiling: it may shrink, never grow, and
once it is within the limit it must leave the list (a ratchet). Nothing may be added to the list
to make this test pass: split the module along its seams instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 500

# path (from the repository root) -> most lines it may have; lower these as they shrink.
SHRINK_ONLY: dict[str, int] = {}

SOURCE_TREES = ("libs/*/src", "services/*/src", "sim/src", "bench/src")


def source_modules() -> list[Path]:
    modules: list[Path] = []
    for pattern in SOURCE_TREES:
        for tree in sorted(ROOT.glob(pattern)):
            modules.extend(sorted(tree.rglob("*.py")))
    return modules


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def oversized(modules: list[Path], shrink_only: dict[str, int], limit: int = LIMIT) -> list[str]:
    """Every module over ``limit`` lines that is not allowed to be, with the reason."""
    found: list[str] = []
    for module in modules:
        name = module.relative_to(ROOT).as_posix() if module.is_relative_to(ROOT) else str(module)
        lines = line_count(module)
        ceiling = shrink_only.get(name)
        if ceiling is None:
            if lines > limit:
                found.append(f"{name}: {lines} lines, over {limit}: split it along its seams")
        elif lines > ceiling:
            found.append(f"{name}: {lines} lines, more than its ceiling of {ceiling}")
        elif lines <= limit:
            found.append(f"{name}: {lines} lines, within {limit} now: take it off SHRINK_ONLY")
    return found


MODULES = source_modules()


def test_the_source_trees_are_found() -> None:
    names = {m.relative_to(ROOT).as_posix() for m in MODULES}
    assert "libs/common/src/phalanx_common/bus.py" in names
    assert "sim/src/phalanx_sim/matching.py" in names
    assert "services/ingest/src/phalanx_ingest/payload.py" in names
    assert "bench/src/phalanx_bench/__init__.py" in names


def test_no_source_module_is_over_the_limit_and_the_exceptions_only_shrink() -> None:
    assert oversized(MODULES, SHRINK_ONLY) == []


@pytest.mark.parametrize("name", sorted(SHRINK_ONLY))
def test_every_exception_names_a_module_that_exists(name: str) -> None:
    assert (ROOT / name).is_file(), f"{name} is gone: take it off SHRINK_ONLY"


def test_the_checker_refuses_a_big_module_a_grown_exception_and_a_shrunk_one(
    tmp_path: Path,
) -> None:
    def module(name: str, lines: int) -> Path:
        path = tmp_path / name
        path.write_text("x = 1\n" * lines, encoding="utf-8")
        return path

    small, big = module("small.py", 500), module("big.py", 501)
    grown, kept, shrunk = module("grown.py", 601), module("kept.py", 550), module("shrunk.py", 499)
    ceilings = {str(grown): 600, str(kept): 600, str(shrunk): 600}
    assert oversized([small, big, grown, kept, shrunk], ceilings) == [
        f"{big}: 501 lines, over 500: split it along its seams",
        f"{grown}: 601 lines, more than its ceiling of 600",
        f"{shrunk}: 499 lines, within 500 now: take it off SHRINK_ONLY",
    ]
