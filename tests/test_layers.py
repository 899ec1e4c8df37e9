"""The shell's packages depend on each other one way only: no import cycles between them.

A cycle (``bot/services`` importing ``bot/alerts`` importing ``bot/services``)
means neither can be read, tested or changed without the other, and it only
works as long as the imports happen in a lucky order. The graph here is built
from every import statement in ``bot/`` and ``scheduler/`` (including imports
inside functions, which hide cycles rather than remove them), one node per
top-level package or module of ``bot``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import bot

ROOT = Path(bot.__file__).parent.parent
SOURCES = [
    p
    for folder in ("bot", "scheduler")
    for p in sorted((ROOT / folder).rglob("*.py"))
    if "migrations" not in p.parts
]


def _unit(dotted: str) -> str | None:
    """The node a module belongs to: ``bot.services.outbox`` -> ``bot.services``."""
    parts = dotted.split(".")
    if parts[0] == "scheduler":
        return "scheduler"
    if parts[0] == "bot" and len(parts) > 1:
        return f"bot.{parts[1]}"
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> set[str]:
    """Every ``bot``/``scheduler`` module named by an import, wherever the import is."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bot":  # from bot import web
                names |= {f"bot.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
    return names


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SOURCES:
        source = _unit(_module_name(path))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in imported(tree):
            target = _unit(name)
            if source and target and target != source:
                graph[source].add(target)
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle, as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_graph_is_built_from_the_real_imports() -> None:
    graph = package_graph()
    assert "bot.store" in graph["bot.services"]
    assert "bot.services" in graph["scheduler"]
    assert "bot.web" in graph["bot.app"]  # an import inside a function counts


def test_no_two_packages_of_the_shell_import_each_other_even_indirectly() -> None:
    assert cycle_in(package_graph()) is None


def test_alerting_leaves_import_nothing_from_the_service_layer() -> None:
    """``bot/alerts`` holds the words and the e-mail transport; the services use them."""
    assert package_graph().get("bot.alerts", set()) == set()


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b", "c"}, "b": {"c"}}, None),
    ],
)
def test_the_cycle_finder_finds_cycles_and_only_cycles(
    graph: dict[str, set[str]], cycle: list[str] | None
) -> None:
    assert cycle_in(graph) == cycle
