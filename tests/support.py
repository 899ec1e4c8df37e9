"""Helpers shared between test files, so that no test file keeps a copy of another's.

Kept free of fixtures: conftest files define those and import what they need from here.
"""

from __future__ import annotations

# Staff passwords hashed cheaply in every app and ``prombot`` process the tests start
# (tests/conftest.py sets STAFF_PASSWORD_HASH); production keeps scrypt (bot/settings.py).
TEST_PASSWORD_HASH = "pbkdf2:sha256:1"
