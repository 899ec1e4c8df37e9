"""Who may open which staff page: every staff route, tried as every kind of visitor.

The table below is the specification (the issue's "Roles and what each may
see"): admin sees everything; a clinician patients, results and alerts;
reception no scores, answers, transcripts or alert details; another
practice's staff none of this practice's records (404, as for an id that does
not exist); the signed-out the sign-in page. The test walks ``app.url_map``,
so a new staff page without a row here fails until someone decides, in this
table, who may open it. The guard itself is bot/web/roles.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.enrolment import create_consultation
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, Patient, Practice, Protocol, StaffUser
from tests.service.alerting import STAFF_PASSWORD, add_staff, other_practice, raise_urgent
from tests.service.conftest import Clock

# What a visitor gets: the page (200), a redirect elsewhere than sign-in (302), sent to
# sign in (LOGIN), refused (403), or nothing there (404).
OK, MOVED, LOGIN, FORBIDDEN, MISSING = "200", "302", "login", "403", "404"
INVALID = "400"  # a form posted with nothing but its CSRF token
EXPIRED = "422"  # an import step posted without the signed preview it carries
VISITORS = ("admin", "clinician", "reception", "other_practice", "signed_out")

# (method, rule): what each of VISITORS gets, in that order.
ROLE_TABLE: dict[tuple[str, str], tuple[str, str, str, str, str]] = {
    ("GET", "/"): (MOVED, MOVED, MOVED, MOVED, LOGIN),
    ("GET", "/staff/"): (MOVED, MOVED, MOVED, MOVED, LOGIN),
    ("GET", "/staff/start"): (OK, OK, OK, OK, LOGIN),
    ("GET", "/staff/login"): (MOVED, MOVED, MOVED, MOVED, OK),
    ("POST", "/staff/login"): (MOVED, MOVED, MOVED, MOVED, OK),
    ("GET", "/staff/alerts"): (OK, OK, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/alerts/<alert_id>"): (OK, OK, FORBIDDEN, MISSING, LOGIN),
    # posted without an outcome: the page again with the error (never acknowledged)
    ("POST", "/staff/alerts/<alert_id>/acknowledge"): (INVALID, INVALID, FORBIDDEN, MISSING, LOGIN),
    ("GET", "/staff/alerts/fragment"): (OK, OK, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/alerts/count"): (OK, OK, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/patients"): (OK, OK, OK, OK, LOGIN),
    ("GET", "/staff/patients/results"): (OK, OK, OK, OK, LOGIN),
    ("GET", "/staff/patients/new"): (OK, OK, OK, OK, LOGIN),
    ("POST", "/staff/patients/new"): (INVALID, INVALID, INVALID, INVALID, LOGIN),
    ("GET", "/staff/patients/<patient_id>"): (OK, OK, OK, MISSING, LOGIN),
    ("GET", "/staff/patients/<patient_id>/edit"): (OK, OK, OK, MISSING, LOGIN),
    ("POST", "/staff/patients/<patient_id>/edit"): (INVALID, INVALID, INVALID, MISSING, LOGIN),
    ("POST", "/staff/patients/<patient_id>/schedule"): (INVALID, INVALID, INVALID, MISSING, LOGIN),
    ("GET", "/staff/followups"): (OK, OK, OK, OK, LOGIN),
    ("POST", "/staff/followups/<invitation_id>/cancel"): (MOVED, MOVED, MOVED, MISSING, LOGIN),
    ("POST", "/staff/followups/<invitation_id>/send-now"): (MOVED, MOVED, MOVED, MISSING, LOGIN),
    ("GET", "/staff/followups/<invitation_id>/reschedule"): (OK, OK, OK, MISSING, LOGIN),
    ("POST", "/staff/followups/<invitation_id>/reschedule"): (
        INVALID,
        INVALID,
        INVALID,
        MISSING,
        LOGIN,
    ),
    ("POST", "/staff/consultations/<consultation_id>/cancel"): (
        MOVED,
        MOVED,
        MOVED,
        MISSING,
        LOGIN,
    ),
    ("GET", "/staff/patients/<patient_id>/transcript"): (OK, OK, FORBIDDEN, MISSING, LOGIN),
    ("GET", "/staff/reports"): (OK, OK, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/reports.csv"): (OK, OK, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/import"): (OK, OK, OK, OK, LOGIN),
    ("POST", "/staff/import"): (INVALID, INVALID, INVALID, INVALID, LOGIN),
    ("POST", "/staff/import/confirm"): (EXPIRED, EXPIRED, EXPIRED, EXPIRED, LOGIN),
    ("POST", "/staff/import/failures.csv"): (EXPIRED, EXPIRED, EXPIRED, EXPIRED, LOGIN),
    ("GET", "/staff/password"): (OK, OK, OK, OK, LOGIN),
    ("POST", "/staff/password"): (INVALID, INVALID, INVALID, INVALID, LOGIN),
    ("GET", "/staff/settings/staff/<staff_id>/password"): (
        OK,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("POST", "/staff/settings/staff/<staff_id>/password"): (
        OK,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    # The practice's settings, protocols and staff: admins only; another practice's admin
    # has settings of their own, but this practice's protocol and member are 404 to them.
    ("GET", "/staff/settings"): (OK, FORBIDDEN, FORBIDDEN, OK, LOGIN),
    ("POST", "/staff/settings"): (INVALID, FORBIDDEN, FORBIDDEN, INVALID, LOGIN),
    ("GET", "/staff/settings/protocols"): (OK, FORBIDDEN, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/settings/protocols/new"): (OK, FORBIDDEN, FORBIDDEN, OK, LOGIN),
    ("POST", "/staff/settings/protocols/new"): (INVALID, FORBIDDEN, FORBIDDEN, INVALID, LOGIN),
    ("GET", "/staff/settings/protocols/<protocol_name>"): (
        OK,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("POST", "/staff/settings/protocols/<protocol_name>"): (
        INVALID,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("GET", "/staff/settings/protocols/<protocol_name>/remove"): (
        OK,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("POST", "/staff/settings/protocols/<protocol_name>/remove"): (
        INVALID,  # not without the confirm page's "yes"
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("GET", "/staff/settings/staff"): (OK, FORBIDDEN, FORBIDDEN, OK, LOGIN),
    ("GET", "/staff/settings/staff/new"): (OK, FORBIDDEN, FORBIDDEN, OK, LOGIN),
    ("POST", "/staff/settings/staff/new"): (INVALID, FORBIDDEN, FORBIDDEN, INVALID, LOGIN),
    ("GET", "/staff/settings/staff/<staff_id>"): (OK, FORBIDDEN, FORBIDDEN, MISSING, LOGIN),
    ("POST", "/staff/settings/staff/<staff_id>"): (
        INVALID,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("GET", "/staff/settings/staff/<staff_id>/deactivate"): (
        OK,
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("POST", "/staff/settings/staff/<staff_id>/deactivate"): (
        INVALID,  # not without the confirm page's "yes"
        FORBIDDEN,
        FORBIDDEN,
        MISSING,
        LOGIN,
    ),
    ("GET", "/staff/logout"): (OK, OK, OK, OK, LOGIN),
    ("POST", "/staff/logout"): (LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),  # signed out, then sign in
}
# Tried last: it signs the visitor out.
LAST = {("POST", "/staff/logout")}


@dataclass
class Visitor:
    name: str
    client: FlaskClient


def _csrf(client: FlaskClient) -> str:
    page = client.get("/staff/login")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text) or re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/staff/logout").text
    )
    assert match, page.text
    return match.group(1)


def _signed_in(app: Flask, email: str, password: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/staff/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": password}
    )
    assert response.status_code == 302, (email, response.text)
    return client


def _set_role(runtime: Runtime, user_id: str, role: str) -> None:
    with transaction(runtime.engine) as session:
        session.get(StaffUser, user_id).role = role


@pytest.fixture
def visitors(app: Flask, runtime: Runtime, demo: Demo, clock: Clock) -> dict[str, Visitor]:
    reception = add_staff(
        runtime, demo.practice.id, clock.now, email="desk@demo.prombot.test", name="Pat Desk"
    )
    _set_role(runtime, reception.id, "reception")
    other = other_practice(runtime, clock.now)
    _set_role(runtime, other.clinician.id, "admin")  # their most powerful member
    raise_urgent(runtime, other.patient, clock.now, to=other.practice.sms_number)
    return {
        "admin": Visitor("admin", _signed_in(app, "admin@demo.prombot.test", DEMO_PASSWORD)),
        "clinician": Visitor(
            "clinician", _signed_in(app, "dr.riley@demo.prombot.test", DEMO_PASSWORD)
        ),
        "reception": Visitor(
            "reception", _signed_in(app, "desk@demo.prombot.test", STAFF_PASSWORD)
        ),
        "other_practice": Visitor(
            "other_practice", _signed_in(app, other.clinician.email, STAFF_PASSWORD)
        ),
        "signed_out": Visitor("signed_out", app.test_client()),
    }


def staff_routes(app: Flask) -> list[tuple[str, str]]:
    """Every (method, rule) of the staff pages and the site's root."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule == "/" or rule.rule.startswith("/staff"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule))
    return sorted(routes, key=lambda route: (route in LAST, route))


def test_every_staff_route_has_a_row_in_the_role_table(app: Flask) -> None:
    routes = set(staff_routes(app))
    missing = sorted(routes - set(ROLE_TABLE))
    assert not missing, f"add a row to ROLE_TABLE for each of: {missing}"
    gone = sorted(set(ROLE_TABLE) - routes)
    assert not gone, f"rows for routes that no longer exist: {gone}"


def test_each_visitor_gets_exactly_what_the_role_table_says(
    app: Flask, runtime: Runtime, demo: Demo, clock: Clock, visitors: dict[str, Visitor]
) -> None:
    alex: Patient = next(p for p in demo.patients if p.name == "Alex Example")
    alert_id = raise_urgent(runtime, alex, clock.now)
    spare = add_staff(
        runtime, demo.practice.id, clock.now, email="spare@demo.prombot.test", name="Sam Spare"
    )
    with transaction(runtime.engine) as session:  # a protocol only this practice has
        session.add(
            Protocol(
                practice_id=demo.practice.id,
                name="demo_only",
                title="Demo only",
                schedule_json='[{"instrument": "phq9", "after": "P2W"}]',
                created_at=clock.now,
            )
        )
    with transaction(runtime.engine) as session:
        consultation, (invitation, *_) = create_consultation(
            session,
            session.get(Practice, demo.practice.id),
            runtime.catalogue,
            patient_id=alex.id,
            occurred_at=clock.now,
            protocol=None,
            schedule=[{"instrument": "phq9", "after": "P14D"}],
            now=clock.now,
            actor="test",
        )
        ids = {"consultation_id": consultation.id, "invitation_id": invitation.id}
    values = {
        "alert_id": alert_id,
        "patient_id": alex.id,
        "staff_id": spare.id,
        "protocol_name": "demo_only",
        **ids,
    }
    got: dict[tuple[str, str], tuple[str, ...]] = {}
    for visitor_name in VISITORS:
        client = visitors[visitor_name].client
        token = _csrf(client)
        for method, rule in staff_routes(app):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule)
            data = {"csrf_token": token} if method == "POST" else None
            response = client.open(path, method=method, data=data)
            got.setdefault((method, rule), ())
            got[(method, rule)] += (_outcome(response),)
    expected = {route: ROLE_TABLE[route] for route in got if route in ROLE_TABLE}
    assert {r: got[r] for r in expected} == expected
    with transaction(runtime.engine, read_only=True) as session:
        alert = session.get(Alert, alert_id)
    # an acknowledgement needs an outcome: nobody's bare POST closed it, reception's least
    assert (alert.status, alert.acknowledged_by) == ("open", None)


def session_user_id(runtime: Runtime, email: str) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one().id


def _outcome(response) -> str:
    if response.status_code in (301, 302, 303):
        location = response.headers["Location"]
        return LOGIN if location.startswith("/staff/login") else MOVED
    return str(response.status_code)


def test_reception_is_refused_health_data_with_a_page_that_says_why(
    visitors: dict[str, Visitor], runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    alex = next(p for p in demo.patients if p.name == "Alex Example")
    alert_id = raise_urgent(runtime, alex, clock.now)
    desk = visitors["reception"].client
    for path in [
        "/staff/alerts",
        f"/staff/alerts/{alert_id}",
        f"/staff/patients/{alex.id}/transcript",
    ]:
        page = desk.get(path)
        assert page.status_code == 403, path
        assert "No access" in page.text
        assert "Alex Example" not in page.text and "self-harm" not in page.text


def test_reception_sees_the_patient_page_without_scores_answers_or_alerts(
    visitors: dict[str, Visitor], runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    alex = next(p for p in demo.patients if p.name == "Alex Example")
    alert_id = raise_urgent(runtime, alex, clock.now)
    clinician_page = visitors["clinician"].client.get(f"/staff/patients/{alex.id}")
    assert "alerts-title" in clinician_page.text and alert_id in clinician_page.text
    page = visitors["reception"].client.get(f"/staff/patients/{alex.id}")
    assert page.status_code == 200
    assert "Alex Example" in page.text and "Consultations and follow-ups" in page.text
    for health in ("self-harm", alert_id, "alerts-title", "instrument-section", "/transcript",
                   "Results", "answer-", "score", "Severe"):  # fmt: skip
        assert health not in page.text, health
