"""The settings pages (/staff/settings) through Flask's test client, on SQLite and PostgreSQL.

An admin changes the practice's settings, its protocols and its staff, with the
API's own rules (each problem shown by its field and in an error summary) and
the API's services (every change audited with ``user:<id>``). The practice's
warning that an urgent alert would reach nobody is shown after a change.
Clinicians and reception get 403 on every settings route; another practice's
protocol or member is 404.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import AuditEvent, Practice, Protocol, StaffUser
from tests.service.alerting import STAFF_PASSWORD, add_staff, other_practice
from tests.service.conftest import Clock
from tests.service.test_staff_views import csrf_token, sign_in

ADMIN = "admin@demo.prombot.test"
RILEY = "dr.riley@demo.prombot.test"
GOOD_SETTINGS = {
    "send_window_start": "08:30",
    "send_window_end": "16:00",
    "working_days": ["mon", "tue", "wed"],
    "nation": "WLS",
    "timezone": "Europe/London",
    "reminder_after_hours": "12",
    "max_reminders": "2",
    "expire_after_days": "5",
    "invitation_valid_days": "10",
    "escalate_after_minutes": "20",
    "escalate_every_minutes": "45",
    "contact_phone": "020 7946 0000",
    "contact_email": "surgery@demo.prombot.test",
}


def signed_in(app: Flask, email: str = ADMIN, password: str = DEMO_PASSWORD) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, email, password)
    assert response.status_code == 302, response.text
    return client


def post(client: FlaskClient, path: str, data: dict[str, Any], form_at: str | None = None):
    """Post ``data`` to ``path`` with the CSRF token of the form page at ``form_at`` (or path)."""
    page = client.get(form_at or path)
    assert page.status_code == 200, page.text
    return client.post(path, data={"csrf_token": csrf_token(page.text), **data})


def summary(html: str) -> list[tuple[str, str]]:
    """The error summary's (link, message) pairs."""
    return re.findall(r'<li><a href="#([^"]+)">([^<]+)</a></li>', html)


def user(runtime: Runtime, email: str) -> StaffUser:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one()


def audited(runtime: Runtime, action: str) -> list[str]:
    """The actors of ``action`` in the audit log."""
    with transaction(runtime.engine, read_only=True) as session:
        return list(session.exec(select(AuditEvent.actor).where(AuditEvent.action == action)))


def protocol(runtime: Runtime, practice_id: str, name: str) -> Protocol | None:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(
            select(Protocol).where(Protocol.practice_id == practice_id, Protocol.name == name)
        ).first()


@pytest.fixture
def admin(app: Flask, demo: Demo) -> FlaskClient:
    return signed_in(app)


# -- the practice's settings ---------------------------------------------------------------


def test_the_overview_links_to_protocols_staff_and_shows_the_practices_settings(
    admin: FlaskClient,
) -> None:
    page = admin.get("/staff/settings")
    assert page.status_code == 200
    assert 'href="/staff/settings/protocols"' in page.text
    assert 'href="/staff/settings/staff"' in page.text
    assert 'id="send_window_start"' in page.text and 'value="09:00"' in page.text
    assert 'id="practice-warnings"' not in page.text  # Dr Riley is on duty with a mobile
    assert 'aria-current="page"' in page.text  # "Settings" in the header


def test_an_admin_saves_the_practices_settings_through_the_service_with_an_audit_row(
    admin: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    saved = post(admin, "/staff/settings", GOOD_SETTINGS)
    assert saved.status_code == 302 and saved.headers["Location"] == "/staff/settings"
    with transaction(runtime.engine, read_only=True) as session:
        practice = session.get(Practice, demo.practice.id)
    assert (practice.send_window_start, practice.send_window_end) == ("08:30", "16:00")
    assert practice.working_days == "mon tue wed" and practice.nation == "WLS"
    assert (practice.reminder_after_hours, practice.max_reminders) == (12, 2)
    assert (practice.escalate_after_minutes, practice.escalate_every_minutes) == (20, 45)
    assert practice.contact_phone == "020 7946 0000"
    assert audited(runtime, "practice.settings_changed") == [f"user:{user(runtime, ADMIN).id}"]
    page = admin.get("/staff/settings")
    assert "The practice&#39;s settings have been saved." in page.text
    assert 'value="08:30"' in page.text and 'value="wed" checked' in page.text


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"send_window_start": "25:00"}, "send_window_start", "Send window start must be a time"),
        ({"send_window_start": "17:00"}, "send_window_end", "(17:00) must be before Send window"),
        ({"working_days": []}, "working_days", "Working days must be a list of one or more"),
        ({"nation": "XYZ"}, "nation", "Nation must be one of ENG"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Time zone must be an IANA time zone"),
        ({"max_reminders": "two"}, "max_reminders", "Reminders must be a whole number from 0"),
        ({"expire_after_days": "0"}, "expire_after_days", "from 1 to 60"),
        ({"reminder_after_hours": "130"}, "reminder_after_hours", "must be less than"),
        ({"contact_email": "nobody"}, "contact_email", "Contact e-mail must be an e-mail"),
        ({"contact_phone": "12"}, "contact_phone", "Contact phone must be a UK phone number"),
    ],
)
def test_each_settings_problem_is_shown_by_its_field_and_nothing_is_saved(
    admin: FlaskClient,
    runtime: Runtime,
    demo: Demo,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    refused = post(admin, "/staff/settings", {**GOOD_SETTINGS, **change})
    assert refused.status_code == 400
    assert "There is a problem" in refused.text and "<title>Error: " in refused.text
    [(link, message)] = summary(refused.text)
    first_box = "working_days" if field == "working_days" else field
    assert link == first_box and words in message
    assert f'id="{field}-error"' in refused.text
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Practice, demo.practice.id).send_window_start == "09:00"
    assert audited(runtime, "practice.settings_changed") == []


def test_several_problems_are_each_shown_by_their_own_field(admin: FlaskClient) -> None:
    refused = post(
        admin, "/staff/settings", {**GOOD_SETTINGS, "send_window_end": "9pm", "nation": ""}
    )
    assert [link for link, _ in summary(refused.text)] == ["nation", "send_window_end"]


# -- the warnings --------------------------------------------------------------------------


def test_the_warning_that_an_urgent_alert_would_reach_nobody_shows_after_a_change(
    admin: FlaskClient, runtime: Runtime
) -> None:
    riley = user(runtime, RILEY)
    assert 'id="practice-warnings"' not in admin.get("/staff/settings/staff").text
    moved = post(
        admin,
        f"/staff/settings/staff/{riley.id}",
        {"role": "clinician", "mobile": riley.mobile},  # no longer on duty
    )
    assert moved.status_code == 302
    # The admin is an escalation contact with a mobile: still someone to tell.
    assert 'id="practice-warnings"' not in admin.get("/staff/settings/staff").text
    me = user(runtime, ADMIN)
    post(admin, f"/staff/settings/staff/{me.id}", {"role": "admin", "mobile": ""})
    listing = admin.get("/staff/settings/staff")
    assert 'id="practice-warnings"' in listing.text
    assert "An urgent alert would reach nobody" in listing.text
    assert 'id="practice-warnings"' in admin.get("/staff/settings").text
    assert audited(runtime, "staff.updated") == [f"user:{me.id}"] * 2


# -- protocols -----------------------------------------------------------------------------


def schedule_rows(*rows: tuple[str, str, str]) -> dict[str, str]:
    data = {"rows": str(len(rows) + 1)}
    for index, (instrument, amount, unit) in enumerate(rows):
        data |= {f"instrument-{index}": instrument, f"amount-{index}": amount}
        data[f"unit-{index}"] = unit
    return data


def test_an_admin_creates_changes_and_removes_a_protocol(
    admin: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    me = f"user:{user(runtime, ADMIN).id}"
    created = post(
        admin,
        "/staff/settings/protocols/new",
        {
            "name": "low_mood_review",
            "title": "Low mood review",
            **schedule_rows(("phq9", "2", "W"), ("", "", "W"), ("gad7", "10", "D")),
        },
    )
    assert created.status_code == 302, created.text
    stored = protocol(runtime, demo.practice.id, "low_mood_review")
    assert json.loads(stored.schedule_json) == [
        {"instrument": "phq9", "after": "P2W"},
        {"instrument": "gad7", "after": "P10D"},
    ]
    listing = admin.get("/staff/settings/protocols")
    assert 'id="protocol-low_mood_review"' in listing.text and "Low mood review" in listing.text

    edit = admin.get("/staff/settings/protocols/low_mood_review")
    assert 'value="10"' in edit.text and '<option value="D" selected>' in edit.text
    changed = post(
        admin,
        "/staff/settings/protocols/low_mood_review",
        {"title": "Low mood, longer", **schedule_rows(("phq9", "3", "M"))},
    )
    assert changed.status_code == 302, changed.text
    stored = protocol(runtime, demo.practice.id, "low_mood_review")
    assert stored.title == "Low mood, longer"
    assert json.loads(stored.schedule_json) == [{"instrument": "phq9", "after": "P3M"}]

    path = "/staff/settings/protocols/low_mood_review/remove"
    assert post(admin, path, {}).status_code == 400  # not without the confirm page's "yes"
    assert protocol(runtime, demo.practice.id, "low_mood_review") is not None
    removed = post(admin, path, {"confirm": "yes"})
    assert removed.status_code == 302
    assert protocol(runtime, demo.practice.id, "low_mood_review") is None
    assert admin.get("/staff/settings/protocols/low_mood_review").status_code == 404
    for action in ("protocol.created", "protocol.updated", "protocol.deleted"):
        assert audited(runtime, action) == [me], action


@pytest.mark.parametrize(
    ("data", "link", "words"),
    [
        (
            {"name": "Low Mood", **schedule_rows(("phq9", "2", "W"))},
            "name",
            "Name must be lower_snake_case",
        ),
        (
            {"name": "wellbeing", **schedule_rows(("phq9", "2", "W"))},
            "name",
            "already has a protocol named wellbeing",
        ),
        ({"name": "nothing_in_it", **schedule_rows()}, "instrument-0", "at least one"),
        (
            {"name": "no_amount", **schedule_rows(("phq9", "2", "W"), ("gad7", "soon", "W"))},
            "amount-1",
            "Row 2: enter how long after, as a number",
        ),
        (
            {"name": "no_questionnaire", **schedule_rows(("", "2", "W"))},
            "instrument-0",
            "Row 1: choose a questionnaire",
        ),
        (
            {"name": "too_far", **schedule_rows(("phq9", "61", "M"))},
            "amount-0",
            "Row 1: the time after the consultation must be at most P5Y",
        ),
    ],
)
def test_each_protocol_problem_is_shown_by_its_field_and_nothing_is_saved(
    admin: FlaskClient,
    runtime: Runtime,
    demo: Demo,
    data: dict[str, str],
    link: str,
    words: str,
) -> None:
    refused = post(admin, "/staff/settings/protocols/new", {"title": "A title", **data})
    assert refused.status_code == 400
    found = summary(refused.text)
    assert any(at == link and words in message for at, message in found), found
    assert f'id="{link}-error"' in refused.text
    assert audited(runtime, "protocol.created") == []


def test_a_blank_title_is_refused_when_a_protocol_is_changed(
    admin: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    refused = post(admin, "/staff/settings/protocols/wellbeing", {"title": " ", **schedule_rows()})
    assert refused.status_code == 400
    links = [link for link, _ in summary(refused.text)]
    assert "title" in links and 'id="title-error"' in refused.text
    assert audited(runtime, "protocol.updated") == []


# -- staff ---------------------------------------------------------------------------------


def test_an_admin_adds_a_member_who_signs_in_with_a_one_time_password_and_must_change_it(
    app: Flask, admin: FlaskClient, runtime: Runtime
) -> None:
    added = post(
        admin,
        "/staff/settings/staff/new",
        {
            "name": "Pat Desk",
            "email": "Pat.Desk@demo.prombot.test",
            "role": "reception",
            "mobile": "07700 900060",
        },
    )
    assert added.status_code == 200, added.text
    one_time = re.search(r'<code id="one-time-password">([^<]+)</code>', added.text).group(1)
    member = user(runtime, "pat.desk@demo.prombot.test")
    assert (member.role, member.mobile, member.must_change_password) == (
        "reception",
        "+447700900060",
        True,
    )
    assert one_time not in member.password_hash
    assert audited(runtime, "staff.created") == [f"user:{user(runtime, ADMIN).id}"]
    listing = admin.get("/staff/settings/staff")
    assert "Pat Desk" in listing.text and "Temporary password" in listing.text
    assert f'href="/staff/settings/staff/{member.id}/password"' in listing.text
    assert one_time not in listing.text  # shown once only

    desk = app.test_client()
    assert sign_in(desk, "pat.desk@demo.prombot.test", one_time).status_code == 302
    assert desk.get("/staff/patients").headers["Location"] == "/staff/password"


@pytest.mark.parametrize(
    ("change", "link", "words"),
    [
        ({"name": " "}, "name", "Name is required"),
        ({"email": "not an address"}, "email", "E-mail address must be an e-mail address"),
        ({"email": RILEY}, "email", "already in use"),
        ({"mobile": "020 7946 0000"}, "mobile", "Mobile is not a mobile number"),
        ({"role": "superuser"}, "role", "Role must be one of"),
    ],
)
def test_each_new_member_problem_is_shown_by_its_field_and_nobody_is_added(
    admin: FlaskClient, runtime: Runtime, change: dict[str, str], link: str, words: str
) -> None:
    data = {"name": "Kit Newman", "email": "kit@demo.prombot.test", "role": "clinician"}
    refused = post(admin, "/staff/settings/staff/new", {**data, **change})
    assert refused.status_code == 400
    assert [(found, words in message) for found, message in summary(refused.text)] == [
        (link, True)
    ], summary(refused.text)
    assert f'id="{link}-error"' in refused.text
    assert audited(runtime, "staff.created") == []


def test_an_admin_changes_a_members_role_duty_and_mobile_then_deactivates_them(
    admin: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    spare = add_staff(
        runtime, demo.practice.id, clock.now, email="spare@demo.prombot.test", name="Sam Spare"
    )
    path = f"/staff/settings/staff/{spare.id}"
    refused = post(admin, path, {"role": "clinician", "mobile": "123"})
    assert refused.status_code == 400 and 'id="mobile-error"' in refused.text
    saved = post(
        admin,
        path,
        {"role": "admin", "mobile": "07700 900070", "on_duty": "y", "escalation_contact": "y"},
    )
    assert saved.status_code == 302
    changed = user(runtime, "spare@demo.prombot.test")
    assert (changed.role, changed.mobile, changed.on_duty, changed.escalation_contact) == (
        "admin",
        "+447700900070",
        True,
        True,
    )
    confirm = admin.get(f"{path}/deactivate")
    assert "Deactivate Sam Spare?" in confirm.text
    assert post(admin, f"{path}/deactivate", {}).status_code == 400  # no "yes"
    gone = post(admin, f"{path}/deactivate", {"confirm": "yes"})
    assert gone.status_code == 302
    assert f'id="member-{spare.id}"' not in admin.get("/staff/settings/staff").text
    assert admin.get(path).status_code == 404
    me = f"user:{user(runtime, ADMIN).id}"
    assert audited(runtime, "staff.updated") == [me]
    assert audited(runtime, "staff.deleted") + audited(runtime, "staff.deactivated") == [me]


def test_an_admin_cannot_deactivate_themselves(admin: FlaskClient, runtime: Runtime) -> None:
    me = user(runtime, ADMIN)
    assert admin.get(f"/staff/settings/staff/{me.id}/deactivate").status_code == 403


def test_the_practices_last_admin_cannot_be_made_a_clinician(
    admin: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    """The rule is the service's (the API's too): the page shows it by the role field."""
    me = user(runtime, ADMIN)
    path = f"/staff/settings/staff/{me.id}"
    refused = post(admin, path, {"role": "clinician", "mobile": ""})
    assert refused.status_code == 400
    assert "Error: " in refused.text.split("</title>")[0]
    ((link, message),) = summary(refused.text)
    assert link == "role" and message.startswith("This is the practice&#39;s only admin")
    assert 'id="role-error"' in refused.text
    assert user(runtime, ADMIN).role == "admin"
    assert audited(runtime, "staff.updated") == []
    # with another admin, the first may step down
    spare = add_staff(
        runtime, demo.practice.id, clock.now, email="spare@demo.prombot.test", name="Sam Spare"
    )
    assert post(admin, f"/staff/settings/staff/{spare.id}", {"role": "admin"}).status_code == 302
    assert post(admin, path, {"role": "clinician", "mobile": ""}).status_code == 302
    assert user(runtime, ADMIN).role == "clinician"


# -- who may -------------------------------------------------------------------------------


def settings_paths(app: Flask, values: dict[str, str]) -> list[tuple[str, str]]:
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/staff/settings"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule.rule)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                paths.append((method, path))
    return paths


def test_clinicians_and_reception_get_403_on_every_settings_route(
    app: Flask, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    desk = add_staff(
        runtime, demo.practice.id, clock.now, email="desk@demo.prombot.test", name="Pat Desk"
    )
    with transaction(runtime.engine) as session:
        session.get(StaffUser, desk.id).role = "reception"
    values = {"staff_id": user(runtime, ADMIN).id, "protocol_name": "wellbeing"}
    paths = settings_paths(app, values)
    assert len(paths) >= 16
    for email, password in [(RILEY, DEMO_PASSWORD), ("desk@demo.prombot.test", STAFF_PASSWORD)]:
        client = signed_in(app, email, password)
        token = csrf_token(client.get("/staff/password").text)
        for method, path in paths:
            response = client.open(path, method=method, data={"csrf_token": token})
            assert response.status_code == 403, (email, method, path)
    assert protocol(runtime, demo.practice.id, "wellbeing") is not None


def test_another_practices_protocol_and_member_are_not_found(
    app: Flask, admin: FlaskClient, runtime: Runtime, clock: Clock
) -> None:
    other = other_practice(runtime, clock.now)
    with transaction(runtime.engine) as session:
        session.add(
            Protocol(
                practice_id=other.practice.id,
                name="riverside_only",
                title="Riverside only",
                schedule_json='[{"instrument": "phq9", "after": "P2W"}]',
                created_at=clock.now,
            )
        )
    values = {"staff_id": other.clinician.id, "protocol_name": "riverside_only"}
    token = csrf_token(admin.get("/staff/settings").text)
    for method, path in settings_paths(app, values):
        if "riverside_only" in path or other.clinician.id in path:
            data = {"csrf_token": token, "confirm": "yes", "title": "Mine now", "role": "admin"}
            response = admin.open(path, method=method, data=data)
            assert response.status_code == 404, (method, path)
    assert protocol(runtime, other.practice.id, "riverside_only").title == "Riverside only"
    assert user(runtime, other.clinician.email).role == "clinician"
