"""The core (bot/flows, bot/instruments) imports nothing from the shell and reads no clock.

Time comes in as an argument, so the same inputs always give the same state
and events; the shell (Flask, the database, Twilio, the scheduler) stays out.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bot

BOT = Path(bot.__file__).parent
CORE_PACKAGES = ("flows", "instruments")
CORE_MODULES = sorted(p for package in CORE_PACKAGES for p in (BOT / package).rglob("*.py"))

SHELL_PACKAGES = {
    "flask",
    "sqlmodel",
    "sqlalchemy",
    "twilio",
    "apscheduler",
    "structlog",
    "requests",
}
FORBIDDEN_IMPORTS = SHELL_PACKAGES | {"os", "time", "random", "socket", "subprocess"}
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
    ("time", "perf_counter"),
}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
        ):
            found.append((node.lineno, "__import__"))
        elif isinstance(node, ast.Attribute) and node.attr == "import_module":
            found.append((node.lineno, "importlib.import_module"))
    return found


def _clock_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls such as datetime.now(), datetime.datetime.utcnow(), date.today(), time.time()."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = (
                owner.id
                if isinstance(owner, ast.Name)
                else owner.attr
                if isinstance(owner, ast.Attribute)
                else None
            )
            if (owner_name, node.func.attr) in CLOCK_CALLS:
                found.append((node.lineno, f"{owner_name}.{node.func.attr}()"))
    return found


def _name(path: Path) -> str:
    return str(path.relative_to(BOT.parent))


def test_the_core_modules_are_found():
    names = {_name(p) for p in CORE_MODULES}
    assert {"bot/flows/engine.py", "bot/instruments/scoring.py"} <= names


@pytest.mark.parametrize("path", CORE_MODULES, ids=_name)
def test_a_core_module_imports_nothing_from_the_shell_or_the_environment(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"line {line}: {module}"
        for line, module in _imports(tree)
        if module.split(".")[0] in FORBIDDEN_IMPORTS
        or module in ("__import__", "importlib.import_module")
        or (module.startswith("bot.") and module.split(".")[1] not in CORE_PACKAGES)
    ]
    assert not bad, f"{_name(path)} imports {bad}"


@pytest.mark.parametrize("path", CORE_MODULES, ids=_name)
def test_a_core_module_reads_no_clock(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not _clock_calls(tree), f"{_name(path)} reads the clock: {_clock_calls(tree)}"


# name, source, what the checkers must find: proof they are not vacuous
CHECKER_CASES = [
    ("import flask", _imports, [(1, "flask")]),
    ("from sqlalchemy.orm import Session", _imports, [(1, "sqlalchemy.orm")]),
    ("import os.path", _imports, [(1, "os.path")]),
    ("x = datetime.now()", _clock_calls, [(1, "datetime.now()")]),
    ("x = datetime.datetime.utcnow()", _clock_calls, [(1, "datetime.utcnow()")]),
    ("x = date.today()", _clock_calls, [(1, "date.today()")]),
    ("x = time.time()", _clock_calls, [(1, "time.time()")]),
    ("x = now(); y = state.updated_at", _clock_calls, []),
]


@pytest.mark.parametrize(("source", "checker", "found"), CHECKER_CASES)
def test_the_checkers_find_what_they_look_for(source, checker, found):
    assert checker(ast.parse(source)) == found


IMPORT_THE_CORE = """
import json, sys
import bot.flows, bot.instruments
from bot.flows import start, resume, outcome
from bot.instruments import builtin_catalogue
builtin_catalogue()
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_core_loads_no_shell_package():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_CORE],
        capture_output=True,
        text=True,
        check=True,
        cwd=BOT.parent,
    )
    modules = json.loads(done.stdout)
    assert "bot.flows.engine" in modules
    shell = sorted(m for m in modules if m.split(".")[0] in SHELL_PACKAGES)
    assert not shell, f"importing the core loaded {shell}"
    ours = sorted(
        m for m in modules if m.startswith("bot.") and m.split(".")[1] not in CORE_PACKAGES
    )
    assert not ours, f"importing the core loaded shell modules of prombot: {ours}"
