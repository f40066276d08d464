"""Print the third-party requirements of the members that go into the runtime image.

Usage: python runtime_requirements.py MEMBER_DIR...   (run from the repository root)

Reads each member's ``[project] dependencies`` (not its optional extras) and prints the
third-party ones, sorted, one per line, for ``pip install -c constraints.txt -r -``. A member
that depends on a Phalanx package that is not in the list fails the run: the image would
otherwise install it from the package index, or, for ``phalanx-testing``, ship test tooling.
Used by the Dockerfile and by tests/deploy/test_dockerfile.py.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    match = _NAME.match(requirement.strip())
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def runtime_requirements(members: list[Path]) -> list[str]:
    projects: dict[str, dict[str, Any]] = {}
    for member in members:
        with (member / "pyproject.toml").open("rb") as f:
            project = tomllib.load(f)["project"]
        projects[requirement_name(project["name"])] = project
    third_party: set[str] = set()
    for name, project in projects.items():
        for requirement in project.get("dependencies", []):
            dependency = requirement_name(requirement)
            if not dependency.startswith("phalanx-"):
                third_party.add(requirement.strip())
            elif dependency not in projects:
                raise SystemExit(f"{name} depends on {dependency}, which is not in the image")
    return sorted(third_party)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for requirement in runtime_requirements([Path(arg) for arg in sys.argv[1:]]):
        print(requirement)


if __name__ == "__main__":
    main()
