"""What holds for the whole test run: cheap password hashing, and how pytest-xdist
shares the tests between workers.

``make test`` runs the suite on every core (``-n auto --dist loadgroup``). Each
worker has its own databases: SQLite templates live in the worker's own
temporary folder and every PostgreSQL database gets a random name
(tests/dbs.py). Tests that share an expensive module-scoped fixture (a
``prombot serve`` process, a batch of ``prombot`` runs) are kept together on
one worker, so that fixture starts once per module, not once per worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import TEST_PASSWORD_HASH

TESTS = Path(__file__).parent
# Hashing staff passwords with scrypt was most of the suite's time.
os.environ.setdefault("STAFF_PASSWORD_HASH", TEST_PASSWORD_HASH)


def _keep_together(path: Path) -> bool:
    """An e2e module's tests share its server processes (module-scoped): one worker each."""
    return (TESTS / "e2e") in path.parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _keep_together(item.path):
            item.add_marker(pytest.mark.xdist_group(item.path.relative_to(TESTS).as_posix()))
            # real processes (servers, schedulers, browsers): the slow set
            item.add_marker(pytest.mark.slow)
