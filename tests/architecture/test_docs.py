"""The docs live in the repository: the ADR index lists every ADR, relative links in the docs
resolve, and nothing points at files a clone of this repository does not contain."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADR_DIR = ROOT / "docs" / "adr"

# Notes that lived beside the repository once: a pointer to them is a dead end in a clone. The
# names are spelled in pieces so that searching the repository for them finds no false hit here.
_SEED_NOTES = "DES" + "IGN"
OUTSIDE = re.compile(
    r"\.\./shared|\b"
    + _SEED_NOTES
    + r"\b|field-"
    + r"survey|infra[- ]notes|seed design|\breference §"
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    return [ROOT / name for name in out.split("\0") if name]


def generated(target: Path) -> bool:
    """A git-ignored path (e.g. the screenshots ``make test`` writes) may not exist yet."""
    return (
        subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", str(target)], cwd=ROOT, check=False
        ).returncode
        == 0
    )


def test_every_adr_is_in_the_index() -> None:
    index = (ADR_DIR / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\((\d{4}-[^)]+\.md)\)", index))
    on_disk = {p.name for p in ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md")}
    assert sorted(on_disk - listed) == [], "add a line to docs/adr/README.md"
    assert sorted(listed - on_disk) == [], "the index names an ADR that does not exist"


def test_adr_numbers_are_unique() -> None:
    numbers = [p.name[:4] for p in ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md")]
    assert sorted(n for n in set(numbers) if numbers.count(n) > 1) == []


@pytest.mark.parametrize(
    "doc",
    [ROOT / "README.md", ROOT / "docs" / "architecture.md", ADR_DIR / "README.md"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_resolve(doc: Path) -> None:
    missing = [
        target
        for target in LINK.findall(doc.read_text(encoding="utf-8"))
        if "://" not in target
        and not target.startswith("mailto:")
        and not (doc.parent / target).exists()
        and not generated(doc.parent / target)
    ]
    assert missing == []


def test_nothing_points_outside_the_repository() -> None:
    hits: list[str] = []
    for path in tracked_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == []


@pytest.mark.parametrize(
    ("line", "outside"),
    [
        ("see ../" + "shared/notes.md §4", True),
        (f"# {_SEED_NOTES}'s 10,000-account target", True),
        ("(see the infra notes, Jepsen section)", True),
        ("the field-" + "survey says", True),
        ("as the venue documents it (reference §2.1)", True),
        ("see docs/architecture.md (targets)", False),
        ("a design decision, ADR-0150", False),
    ],
)
def test_the_pattern_tells_outside_pointers(line: str, outside: bool) -> None:
    assert bool(OUTSIDE.search(line)) is outside
