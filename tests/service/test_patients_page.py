"""The patient list at /staff/patients: search by name, NHS number or the end of the
mobile, a page at a time, this practice's patients only, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from bot.services import patient_search
from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Patient, StaffUser
from tests.service.alerting import STAFF_PASSWORD, add_staff, other_practice
from tests.service.conftest import Clock
from tests.service.test_staff_views import sign_in


def _names(html: str) -> list[str]:
    rows = re.findall(r'<tr class="nhsuk-table__row patient-row".*?</tr>', html, re.S)
    return [re.sub(r"<[^>]+>", "", re.search(r"</span>(.*?)</td>", r, re.S).group(1)).strip()
            for r in rows]  # fmt: skip


def _enrol(runtime: Runtime, demo: Demo, clock: Clock, count: int) -> None:
    with transaction(runtime.engine) as session:
        for n in range(count):
            session.add(
                Patient(
                    practice_id=demo.practice.id,
                    name=f"Test Person {n:03d}",
                    phone=f"+447700900{500 + n:03d}",
                    created_at=clock.now,
                )
            )


@pytest.fixture
def signed_in(client: FlaskClient, demo: Demo) -> FlaskClient:
    assert sign_in(client).status_code == 302
    return client


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alex", ["Alex Example"]),  # the start of the name, any case
        ("SAMPLE", ["Bo Sample"]),  # the start of the surname
        ("sam", ["Bo Sample"]),
        ("bo sam", ["Bo Sample"]),
        ("sample, bo", ["Bo Sample"]),  # surname first, as practice systems write it
        ("ÁLEX", ["Alex Example"]),  # accents aside
        ("ample", []),  # the middle of a word is not a start
        ("9434765919", ["Alex Example"]),  # an NHS number
        ("943 476 5919", ["Alex Example"]),  # as written on a card
        ("0101", ["Alex Example"]),  # the end of the mobile
        ("07700 900102", ["Bo Sample"]),  # the whole mobile, national form
        ("12", []),  # too few digits to mean anything
        ("%", []),  # wildcards are plain characters
        ("Dana", []),  # another practice's patient
    ],
)
def test_a_patient_is_found_by_name_nhs_number_or_the_end_of_their_mobile(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, query: str, expected: list[str]
) -> None:
    other_practice(runtime, clock.now)
    page = signed_in.get("/staff/patients", query_string={"q": query})
    assert page.status_code == 200
    assert _names(page.text) == expected


def test_the_list_comes_a_page_at_a_time_by_name(
    signed_in: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    _enrol(runtime, demo, clock, patient_search.PAGE_SIZE + 5)
    total = patient_search.PAGE_SIZE + 5 + len(demo.patients)
    first = signed_in.get("/staff/patients")
    names = _names(first.text)
    assert len(names) == patient_search.PAGE_SIZE
    assert names == sorted(names, key=str.lower)
    assert f"{total} patients, page 1 of 2." in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = signed_in.get("/staff/patients", query_string={"page": 2})
    assert len(_names(second.text)) == total - patient_search.PAGE_SIZE
    assert not set(_names(second.text)) & set(names)
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    # A page past the end, or not a number, shows a real page rather than an error.
    assert _names(signed_in.get("/staff/patients?page=99").text) == _names(second.text)
    assert _names(signed_in.get("/staff/patients?page=x").text) == names
    searched = signed_in.get("/staff/patients", query_string={"q": "test person"})
    assert f"{patient_search.PAGE_SIZE + 5} patients found" in searched.text
    assert "q=test+person&amp;page=2" in searched.text


def test_reception_finds_patients_and_opens_their_page(
    client: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    desk = add_staff(
        runtime, demo.practice.id, clock.now, email="desk@demo.prombot.test", name="Pat Desk"
    )
    with transaction(runtime.engine) as session:
        session.get(StaffUser, desk.id).role = "reception"
    response = sign_in(client, email="desk@demo.prombot.test", password=STAFF_PASSWORD)
    assert response.headers["Location"] == "/staff/patients"  # reception's start page
    page = client.get("/staff/patients", query_string={"q": "alex"})
    assert _names(page.text) == ["Alex Example"]
    alex = next(p for p in demo.patients if p.name == "Alex Example")
    # the patient page is every role's (bot/web/patient_pages.py); its health sections are not
    assert f'href="/staff/patients/{alex.id}"' in page.text
    clinician = client.application.test_client()
    assert sign_in(clinician, password=DEMO_PASSWORD).status_code == 302
    assert f'href="/staff/patients/{alex.id}"' in clinician.get("/staff/patients?q=alex").text


def test_the_live_search_swaps_in_the_results_alone_and_the_form_still_works_without_it(
    signed_in: FlaskClient,
) -> None:
    page = signed_in.get("/staff/patients")
    # progressive enhancement: a plain GET form, which htmx upgrades on the search box
    assert '<form method="get" action="/staff/patients"' in page.text
    assert 'hx-get="/staff/patients/results"' in page.text
    assert 'hx-target="#patient-results"' in page.text and 'id="patient-results"' in page.text
    fragment = signed_in.get("/staff/patients/results?q=sam", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<h1" not in fragment.text
    assert _names(fragment.text) == ["Bo Sample"]
    assert "1 patient found" in fragment.text
    # the address bar follows the search, so reload and back show the same results
    assert fragment.headers["HX-Replace-Url"] == "/staff/patients?q=sam"
    # without JavaScript, the same search is the whole page
    assert _names(signed_in.get("/staff/patients?q=sam").text) == ["Bo Sample"]
