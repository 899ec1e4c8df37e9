"""Staff passwords: scrypt in production, a cheap method only where the tests ask for one."""

from __future__ import annotations

import pytest
from werkzeug.security import check_password_hash

from bot.services.demo import DEMO_PASSWORD, demo_password_hash
from bot.services.staff_admin import hash_password
from bot.settings import Settings, SettingsError, load_settings


def test_production_hashes_staff_passwords_with_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAFF_PASSWORD_HASH", raising=False)
    assert load_settings().staff_password_hash == "scrypt"
    assert Settings.model_fields["staff_password_hash"].default == "scrypt"
    assert hash_password("correct horse battery").startswith("scrypt:32768:8:1$")


def test_the_tests_hash_cheaply_and_the_hash_still_checks() -> None:
    method = load_settings({"STAFF_PASSWORD_HASH": "pbkdf2:sha256:1"}).staff_password_hash
    stored = hash_password("correct horse battery", method)
    assert stored.startswith("pbkdf2:sha256:1$")
    assert check_password_hash(stored, "correct horse battery")
    assert not check_password_hash(stored, "correct horse")


@pytest.mark.parametrize("value", ["md5", "plain", "pbkdf2:md5:1", "scrypt:1", ""])
def test_an_unknown_hashing_method_stops_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^STAFF_PASSWORD_HASH: must be scrypt"):
        load_settings({"STAFF_PASSWORD_HASH": value})


def test_the_demo_password_is_hashed_once_per_process_and_checks() -> None:
    first = demo_password_hash("pbkdf2:sha256:1")
    assert demo_password_hash("pbkdf2:sha256:1") is first
    assert check_password_hash(first, DEMO_PASSWORD)
