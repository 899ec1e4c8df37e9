"""Staff passwords through Flask's test client, on SQLite and PostgreSQL.

Every member changes their own password under the NCSC-style rules (one
table row per rule); an admin resets a member of their own practice to a
one-time password shown once (clinicians and reception 403, another
practice's member 404); a one-time password sends its owner to the change
page from every staff page until changed; each change is audited with who
made it, ends the member's other sessions, and no password reaches a log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import structlog
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select
from werkzeug.security import generate_password_hash

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, StaffUser
from tests.service.alerting import STAFF_PASSWORD, other_practice
from tests.service.conftest import Clock
from tests.service.test_staff_views import csrf_token, sign_in

RILEY = "dr.riley@demo.prombot.test"
ADMIN = "admin@demo.prombot.test"
NEW_PASSWORD = "marmalade kettle lighthouse"


def signed_in(app: Flask, email: str, password: str = DEMO_PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email, password)
    assert response.status_code == 302, response.text
    return client


def change(client: FlaskClient, current: str, new: str, again: str | None = None):
    page = client.get("/staff/password")
    assert page.status_code == 200, page.text
    data = {
        "csrf_token": csrf_token(page.text),
        "current_password": current,
        "new_password": new,
        "confirm_password": new if again is None else again,
    }
    return client.post("/staff/password", data=data)


def reset(client: FlaskClient, staff_id: str):
    page = client.get(f"/staff/settings/staff/{staff_id}/password")
    assert page.status_code == 200, page.text
    return client.post(
        f"/staff/settings/staff/{staff_id}/password", data={"csrf_token": csrf_token(page.text)}
    )


def one_time_password(html: str) -> str:
    match = re.search(r'<code id="one-time-password">([^<]+)</code>', html)
    assert match, html
    return match.group(1)


def user(runtime: Runtime, email: str) -> StaffUser:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one()


def audit_of(runtime: Runtime, staff_id: str, action: str) -> list[AuditEvent]:
    with transaction(runtime.engine, read_only=True) as session:
        return list(
            session.exec(
                select(AuditEvent)
                .where(AuditEvent.subject_id == staff_id)
                .where(AuditEvent.action == action)
            ).all()
        )


@contextmanager
def logs_captured(caplog: pytest.LogCaptureFixture) -> Iterator[list[dict]]:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        yield logs


# -- one's own password ----------------------------------------------------------------------


def test_a_member_changes_their_own_password_and_signs_in_with_it(
    app: Flask, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    client = signed_in(app, RILEY)
    response = change(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302
    assert client.get(response.headers["Location"], follow_redirects=True).status_code == 200
    assert client.get("/staff/alerts").status_code == 200  # this session carries on
    assert sign_in(app.test_client(), RILEY, DEMO_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), RILEY, NEW_PASSWORD).status_code == 302
    riley = user(runtime, RILEY)
    (entry,) = audit_of(runtime, riley.id, "staff.password_changed")
    assert (entry.actor, entry.practice_id, entry.at) == (
        f"user:{riley.id}",
        demo.practice.id,
        clock.now,
    )


def test_changing_a_password_ends_the_members_other_sessions(app: Flask, demo: Demo) -> None:
    other_browser = signed_in(app, RILEY)
    this_browser = signed_in(app, RILEY)
    assert change(this_browser, DEMO_PASSWORD, NEW_PASSWORD).status_code == 302
    assert this_browser.get("/staff/alerts").status_code == 200
    response = other_browser.get("/staff/alerts")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


TOO_SHORT = "eleven char"
LONGEST = "x" * 1024


@pytest.mark.parametrize(
    ("current", "new", "again", "field", "message"),
    [
        (DEMO_PASSWORD, TOO_SHORT, None, "new_password", "at least 12 characters"),
        (DEMO_PASSWORD, "Password1234", None, "new_password", "most common passwords"),
        (DEMO_PASSWORD, "  qwertyuiop123 ", None, "new_password", "most common passwords"),
        (DEMO_PASSWORD, DEMO_PASSWORD, None, "new_password", "different from your current one"),
        (DEMO_PASSWORD, RILEY.upper(), None, "new_password", "must not be your e-mail address"),
        (DEMO_PASSWORD, "x" * 1025, None, "new_password", "at most 1024 characters"),
        (DEMO_PASSWORD, "tab\tinside password", None, "new_password", "control characters"),
        (DEMO_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "confirm_password", "do not match"),
        (DEMO_PASSWORD, NEW_PASSWORD, "", "confirm_password", "Enter your new password again"),
        (DEMO_PASSWORD, "", "", "new_password", "Enter a new password"),
        ("", NEW_PASSWORD, None, "current_password", "Enter your current password"),
        ("not-the-password", NEW_PASSWORD, None, "current_password", "current password is not"),
    ],
    ids=[
        "shorter-than-12",
        "common",
        "common-with-spaces",
        "same-as-old",
        "own-email",
        "over-1024",
        "control-character",
        "mismatch",
        "no-confirmation",
        "no-new",
        "no-current",
        "wrong-current",
    ],
)
def test_a_new_password_must_meet_each_rule(
    app: Flask,
    runtime: Runtime,
    demo: Demo,
    current: str,
    new: str,
    again: str | None,
    field: str,
    message: str,
) -> None:
    client = signed_in(app, RILEY)
    before = user(runtime, RILEY).password_hash
    response = change(client, current, new, again)
    assert response.status_code == 400
    summary = response.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert f'href="#{field}"' in summary and message in summary
    error = re.search(rf'id="{field}-error"><span[^>]*>Error:</span> ([^<]*)</span>', response.text)
    assert error and message in error.group(1), response.text
    assert f'aria-describedby="{field}-error"' in response.text or (
        f'aria-describedby="{field}-hint {field}-error"' in response.text
    )
    assert user(runtime, RILEY).password_hash == before
    assert audit_of(runtime, user(runtime, RILEY).id, "staff.password_changed") == []


@pytest.mark.parametrize(
    "new",
    ["twelve chars", "no composition rules at all", "ü" * 12 + " 🙂", "x" * 128, LONGEST],
    ids=["exactly-12", "lower-case-only", "unicode", "128", "1024"],
)
def test_long_and_plain_passwords_are_accepted_and_sign_in(
    app: Flask, demo: Demo, new: str
) -> None:
    client = signed_in(app, RILEY)
    assert change(client, DEMO_PASSWORD, new).status_code == 302
    assert sign_in(app.test_client(), RILEY, new).status_code == 302


def test_wrong_current_passwords_are_limited_like_sign_ins(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    client = signed_in(app, RILEY)
    for _ in range(runtime.settings.staff_login_max_failures):
        assert change(client, "not-the-password", NEW_PASSWORD).status_code == 400
    response = change(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 429
    assert "Too many wrong passwords" in response.text
    assert sign_in(app.test_client(), RILEY, DEMO_PASSWORD).status_code == 302


def test_the_change_password_form_needs_its_csrf_token(app: Flask, demo: Demo) -> None:
    client = signed_in(app, RILEY)
    data = {
        "current_password": DEMO_PASSWORD,
        "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    }
    assert client.post("/staff/password", data=data).status_code == 400
    assert sign_in(app.test_client(), RILEY, DEMO_PASSWORD).status_code == 302


def test_the_change_password_page_needs_a_signed_in_member(app: Flask, demo: Demo) -> None:
    response = app.test_client().get("/staff/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


# -- an admin's reset ------------------------------------------------------------------------


def test_an_admin_resets_a_members_password_to_a_one_time_one(
    app: Flask, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    riley_browser = signed_in(app, RILEY)
    admin = signed_in(app, ADMIN)
    riley = user(runtime, RILEY)
    page = admin.get(f"/staff/settings/staff/{riley.id}/password")
    assert "Dr Sam Riley" in page.text and "nhsuk-button" in page.text
    response = reset(admin, riley.id)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = one_time_password(response.text)
    assert len(password) >= 12
    assert user(runtime, RILEY).must_change_password is True
    assert riley_browser.get("/staff/alerts").status_code == 302  # signed out everywhere
    assert sign_in(app.test_client(), RILEY, DEMO_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), RILEY, password).status_code == 302
    (entry,) = audit_of(runtime, riley.id, "staff.password_reset")
    admin_id = user(runtime, ADMIN).id
    assert (entry.actor, entry.practice_id, entry.at) == (
        f"user:{admin_id}",
        demo.practice.id,
        clock.now,
    )


def test_a_reset_makes_a_new_password_each_time(app: Flask, runtime: Runtime, demo: Demo) -> None:
    admin = signed_in(app, ADMIN)
    riley = user(runtime, RILEY)
    first = one_time_password(reset(admin, riley.id).text)
    second = one_time_password(reset(admin, riley.id).text)
    assert first != second
    assert sign_in(app.test_client(), RILEY, first).status_code == 401
    assert sign_in(app.test_client(), RILEY, second).status_code == 302


def add_member(runtime: Runtime, demo: Demo, role: str, email: str) -> StaffUser:
    with transaction(runtime.engine) as session:
        member = StaffUser(
            practice_id=demo.practice.id,
            email=email,
            name=f"Sky {role.title()}",
            role=role,
            password_hash=generate_password_hash(STAFF_PASSWORD),
            created_at=demo.practice.created_at,
        )
        session.add(member)
        return member


@pytest.mark.parametrize("role", ["clinician", "reception"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_only_an_admin_may_reset_a_password(
    app: Flask, runtime: Runtime, demo: Demo, role: str, method: str
) -> None:
    member = add_member(runtime, demo, role, f"{role}@demo.prombot.test")
    client = signed_in(app, member.email, STAFF_PASSWORD)
    admin_id, before = user(runtime, ADMIN).id, user(runtime, ADMIN).password_hash
    token = csrf_token(client.get("/staff/password").text)
    response = client.open(
        f"/staff/settings/staff/{admin_id}/password", method=method, data={"csrf_token": token}
    )
    assert response.status_code == 403
    assert "Only a practice admin" in response.text
    assert user(runtime, ADMIN).password_hash == before
    assert audit_of(runtime, admin_id, "staff.password_reset") == []
    assert sign_in(app.test_client(), ADMIN, DEMO_PASSWORD).status_code == 302


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_practices_member_is_not_found(
    app: Flask, runtime: Runtime, demo: Demo, clock: Clock, method: str
) -> None:
    elsewhere = other_practice(runtime, clock.now)
    admin = signed_in(app, ADMIN)
    token = csrf_token(admin.get("/staff/password").text)
    for staff_id in (elsewhere.clinician.id, "0" * 32, "not an id!"):
        response = admin.open(
            f"/staff/settings/staff/{staff_id}/password", method=method, data={"csrf_token": token}
        )
        assert response.status_code == 404, staff_id
    assert audit_of(runtime, elsewhere.clinician.id, "staff.password_reset") == []
    assert sign_in(app.test_client(), elsewhere.clinician.email, STAFF_PASSWORD).status_code == 302


def test_an_admin_resetting_themselves_is_sent_to_change_their_own(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    admin = signed_in(app, ADMIN)
    response = admin.get(f"/staff/settings/staff/{user(runtime, ADMIN).id}/password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/password"


# -- must change -----------------------------------------------------------------------------


def test_a_one_time_password_leads_to_the_change_page_from_every_staff_page(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    admin = signed_in(app, ADMIN)
    riley = user(runtime, RILEY)
    password = one_time_password(reset(admin, riley.id).text)
    client = app.test_client()
    assert sign_in(client, RILEY, password).status_code == 302
    patient = demo.patients[0]
    pages = ["/staff/", "/staff/alerts", f"/staff/patients/{patient.id}", "/staff/alerts/x"]
    for path in [*pages, f"/staff/settings/staff/{riley.id}/password"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/staff/password", path
    page = client.get("/staff/password")
    assert page.status_code == 200 and 'id="must-change"' in page.text
    token = csrf_token(page.text)
    assert client.post("/staff/alerts/x/acknowledge", data={"csrf_token": token}).status_code == 302
    assert change(client, password, NEW_PASSWORD).status_code == 302
    assert user(runtime, RILEY).must_change_password is False
    assert client.get("/staff/alerts").status_code == 200
    assert client.get(f"/staff/patients/{patient.id}").status_code == 200
    assert 'id="must-change"' not in client.get("/staff/password").text


def test_a_member_who_must_change_can_still_sign_out(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    admin = signed_in(app, ADMIN)
    password = one_time_password(reset(admin, user(runtime, RILEY).id).text)
    client = app.test_client()
    sign_in(client, RILEY, password)
    token = csrf_token(client.get("/staff/password").text)
    response = client.post("/staff/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/login"
    assert client.get("/staff/password").status_code == 302


def test_the_api_is_not_redirected_for_a_member_who_must_change(
    app: Flask, runtime: Runtime, demo: Demo
) -> None:
    admin = signed_in(app, ADMIN)
    reset(admin, user(runtime, RILEY).id)
    headers = {"Authorization": f"Bearer {demo.api_token}"}
    assert app.test_client().get("/api/v1/staff", headers=headers).status_code == 200


# -- no password in any log ------------------------------------------------------------------


def test_no_password_reaches_a_log(
    app: Flask, runtime: Runtime, demo: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    with logs_captured(caplog) as logs:
        admin = signed_in(app, ADMIN)
        one_time = one_time_password(reset(admin, user(runtime, RILEY).id).text)
        client = app.test_client()
        sign_in(client, RILEY, one_time)
        change(client, one_time, "too short")
        change(client, one_time, NEW_PASSWORD)
    for secret in (one_time, NEW_PASSWORD, "too short", DEMO_PASSWORD):
        assert secret not in repr(logs)
        assert secret not in caplog.text
    with transaction(runtime.engine, read_only=True) as session:
        audit = repr(session.exec(select(AuditEvent)).all())
    assert one_time not in audit and NEW_PASSWORD not in audit
