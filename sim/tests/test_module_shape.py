"""The simulator's module shape: no import circle, typed routes that match what ``handle`` does."""

from __future__ import annotations

import ast
from pathlib import Path

import phalanx_sim
from phalanx_sim.endpoints import build_routes
from phalanx_sim.replies import ACCESS_DENIED
from phalanx_sim.routes import PublicRoute, SessionRoute
from phalanx_sim.venue import Venue

PACKAGE = Path(phalanx_sim.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = ["phalanx_sim", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the ``phalanx_sim`` modules it imports (every import, ``TYPE_CHECKING`` too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
                targets += [f"{node.module}.{alias.name}" for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import circle through each module that is on one (depth-first search)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            visit(target, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


def test_the_import_graph_of_a_circle_is_seen() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_simulator_modules_import_in_one_direction_only() -> None:
    graph = import_graph()
    assert "phalanx_sim.venue" in graph
    assert "phalanx_sim.endpoints.orders" in graph
    assert cycles(graph) == []


def test_session_routes_answer_401_without_a_token_and_public_routes_do_not() -> None:
    venue = Venue()
    routes = build_routes()
    public = sorted(name for name, route in routes.items() if isinstance(route, PublicRoute))
    assert public == ["auth/accesstokenrequest"]
    for name, route in routes.items():
        reply = venue.handle(name, None, "", b"{}")
        if isinstance(route, SessionRoute):
            assert (reply.status, reply.payload) == (401, ACCESS_DENIED), name
            assert not venue.is_public(name)
        else:
            assert reply.status != 401, name
            assert venue.is_public(name)
