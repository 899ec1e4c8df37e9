"""``prombot practice create`` onboards a practice with its first admin, on SQLite and PostgreSQL.

In process, through Flask's CLI runner: the practice, its API token and an
admin whose one-time password is printed once on stdout, stored only as a
hash, never logged, and must be changed at first sign-in. A clash on the
admin's e-mail address creates nothing at all.
"""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from flask import Flask
from sqlmodel import select
from werkzeug.security import check_password_hash

from bot.cli import cli
from bot.services.demo import Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, Practice, StaffUser

ADMIN = ["--admin-name", "Pat Manager", "--admin-email", "Pat.Manager@Riverside.Prombot.Test"]
CREATE = ["practice", "create", "--name", "Riverside Health Centre", "--sms-number"]


def create(app: Flask, *args: str):
    return app.test_cli_runner().invoke(cli, [*CREATE, "+447700900990", *args])


def admin_of(runtime: Runtime, practice_id: str) -> StaffUser:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.practice_id == practice_id)).one()


def test_practice_create_makes_the_first_admin_with_a_one_time_password_in_json(
    app: Flask, runtime: Runtime
) -> None:
    result = create(app, *ADMIN, "--nation", "wls", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["admin_email"] == "pat.manager@riverside.prombot.test"
    assert data["api_token"].startswith("pb_") and data["nation"] == "WLS"
    password = data["admin_password"]
    assert len(password) >= 12
    admin = admin_of(runtime, data["practice_id"])
    assert (admin.name, admin.email, admin.role) == (
        "Pat Manager",
        "pat.manager@riverside.prombot.test",
        "admin",
    )
    assert admin.must_change_password is True
    assert password not in admin.password_hash and check_password_hash(
        admin.password_hash, password
    )
    with transaction(runtime.engine, read_only=True) as session:
        practice = session.get(Practice, data["practice_id"])
        assert practice is not None and practice.nation == "WLS"
        audit = session.exec(
            select(AuditEvent).where(AuditEvent.practice_id == practice.id).order_by(AuditEvent.at)
        ).all()
    assert {(a.action, a.subject_id, a.actor) for a in audit} == {
        ("practice.created", practice.id, "system"),
        ("staff.created", admin.id, "system"),
    }


def test_practice_create_prints_the_one_time_password_once_and_keeps_its_warnings(
    app: Flask, runtime: Runtime
) -> None:
    result = create(app, *ADMIN)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Practice:   Riverside Health Centre (")
    assert lines[1] == "SMS number: +447700900990"
    assert lines[2].startswith("API token:  pb_")
    assert lines[3] == "Admin:      pat.manager@riverside.prombot.test"
    password = lines[4].split()[1]
    assert lines[4].startswith("Password:   ") and "must change it" in lines[4]
    assert result.stdout.count(password) == 1
    assert password not in result.stderr
    assert result.stderr.startswith("warning: An urgent alert would reach nobody")
    practice_id = lines[0].rsplit("(", 1)[1].rstrip(")")
    assert check_password_hash(admin_of(runtime, practice_id).password_hash, password)


def test_each_onboarding_gets_a_different_one_time_password(app: Flask) -> None:
    first = json.loads(create(app, *ADMIN, "--json").stdout)["admin_password"]
    again = app.test_cli_runner().invoke(
        cli,
        [
            *CREATE,
            "+447700900991",
            "--admin-name",
            "Lee Other",
            "--admin-email",
            "lee@other.prombot.test",
            "--json",
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["admin_password"] != first


def test_the_one_time_password_is_never_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        result = create(app, *ADMIN, "--json")
    password = json.loads(result.stdout)["admin_password"]
    assert password not in repr(logs)
    assert password not in caplog.text
    assert password not in result.stderr


def test_practice_create_without_an_admin_is_unchanged(app: Flask, runtime: Runtime) -> None:
    result = create(app, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "admin_email" not in data and "admin_password" not in data
    assert data["nation"] == "ENG"
    with transaction(runtime.engine, read_only=True) as session:
        staff = session.exec(
            select(StaffUser).where(StaffUser.practice_id == data["practice_id"])
        ).all()
    assert staff == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--admin-email", "pat@riverside.prombot.test"], "give both the admin's name and e-mail"),
        (["--admin-name", "Pat Manager"], "give both the admin's name and e-mail"),
        (["--admin-name", "Pat Manager", "--admin-email", "not an address"], "admin "),
        (["--admin-name", "", "--admin-email", "pat@riverside.prombot.test"], "give both"),
    ],
    ids=["no-name", "no-email", "bad-email", "empty-name"],
)
def test_practice_create_refuses_an_incomplete_admin_and_creates_nothing(
    app: Flask, runtime: Runtime, args: list[str], message: str
) -> None:
    result = create(app, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    with transaction(runtime.engine, read_only=True) as session:
        assert session.exec(select(Practice)).all() == []


def test_an_admin_e_mail_already_in_use_creates_no_practice(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    result = create(app, "--admin-name", "Pat Manager", "--admin-email", "ADMIN@demo.prombot.test")
    assert result.exit_code == 2
    assert "already in use" in result.stderr
    with transaction(runtime.engine, read_only=True) as session:
        names = session.exec(select(Practice.name)).all()
    assert names == ["Demo Surgery"]


def test_practice_create_refuses_an_unknown_nation(app: Flask) -> None:
    result = create(app, "--nation", "FRA")
    assert result.exit_code == 2
    assert "FRA" in result.output
