"""The Reports page and its CSV through Flask's test client, on SQLite and PostgreSQL.

Who may see it (clinicians and admins; reception 403; signed out to sign-in),
the figures in the page and in the CSV, bad filters answered with an error
summary, charts safe under the CSP, and no patient named anywhere.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.outcome_report import Reach, outcome_report
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import StaffUser
from tests.service import outcome_history
from tests.service.conftest import Clock
from tests.service.test_staff_views import sign_in

RECEPTION = "front.desk@demo.prombot.test"
ADMIN = "admin@demo.prombot.test"
Q1 = "from=2026-01-01&to=2026-03-31"


@pytest.fixture
def history(runtime: Runtime, demo: Demo) -> dict[str, outcome_history.History]:
    """The demo practice's invitations, alerts and scores; another practice's too."""
    with transaction(runtime.engine) as session:
        session.add(
            StaffUser(
                practice_id=demo.practice.id,
                email=RECEPTION,
                name="Robin Reception",
                password_hash=generate_password_hash(DEMO_PASSWORD),
                role="reception",
                created_at=demo.practice.created_at,
            )
        )
        return {
            "reach": outcome_history.reach_and_safety(session, demo.practice, 200),
            "scores": outcome_history.outcomes(session, demo.practice, 300),
        }


def csv_rows(text: str) -> dict[tuple[str, str, str], str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["section", "group", "measure", "value"]
    return {(s, g, m): v for s, g, m, v in rows[1:]}


@pytest.mark.parametrize(("email", "status"), [(None, 302), (RECEPTION, 403)])
@pytest.mark.parametrize("path", ["/staff/reports", "/staff/reports.csv"])
def test_reports_are_not_for_reception_or_the_signed_out(
    client: FlaskClient, history: dict, path: str, email: str | None, status: int
) -> None:
    if email:
        assert sign_in(client, email=email).status_code == 302
    response = client.get(f"{path}?{Q1}")
    assert response.status_code == status
    if status == 302:
        assert response.headers["Location"].startswith("/staff/login")
    else:
        assert "Reach" not in response.text and "section,group" not in response.text


def reach_of(runtime: Runtime, demo: Demo, protocol: str | None = None) -> Reach:
    """Both histories share the demo practice, so reach is the service's (checked by hand in
    test_outcome_report.py); safety and outcomes come from one history each."""
    return outcome_report(
        runtime, demo.practice.id, start=date(2026, 1, 1), end=date(2026, 3, 31), protocol=protocol
    ).reach


@pytest.mark.parametrize("email", ["dr.riley@demo.prombot.test", ADMIN])
def test_clinicians_and_admins_see_the_three_sections(
    client: FlaskClient, runtime: Runtime, demo: Demo, history: dict, email: str
) -> None:
    assert sign_in(client, email=email).status_code == 302
    page = client.get(f"/staff/reports?{Q1}")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    text = page.text
    for heading in ("Reach", "Safety", "Outcomes"):
        assert f">{heading}</h2>" in text
    reach = text[text.index('id="reach-table"') :]
    expected = reach_of(runtime, demo)
    assert expected.due > 8
    assert re.search(rf"Invitations due</th><td[^>]*>{expected.due}<", reach)
    assert re.search(rf"Opted out</th><td[^>]*>{expected.opted_out}<", reach)
    rate = round(expected.completion_rate * 100)
    assert re.search(rf"Completion rate \(completed / sent\)</th><td[^>]*>{rate}%<", reach)
    safety = text[text.index('data-severity="urgent"') :]
    assert re.search(
        r"Urgent</th>\s*<td[^>]*>4</td>\s*<td[^>]*>2</td>\s*<td[^>]*>1 h 15 min<", safety
    )
    phq9 = text[text.index('id="outcomes-phq9"') :]
    assert "3 (50%)" in phq9 and "2 of 5 (40%)" in phq9


def test_charts_are_svg_with_a_text_alternative_and_no_inline_style_or_script(
    client: FlaskClient, history: dict
) -> None:
    sign_in(client)
    text = client.get(f"/staff/reports?{Q1}").text
    charts = re.findall(r'<svg class="report-chart".*?</svg>', text, flags=re.S)
    assert len(charts) == 5  # reach, safety, PHQ-9, GAD-7, WHO-5
    for chart in charts:
        assert 'role="img"' in chart and "<title" in chart and "<desc" in chart
        assert "style=" not in chart and "<script" not in chart
    assert "Urgent: 4; Routine: 1; Information: 1" in charts[1]
    assert "6 weeks: improved: 50%" in charts[2]
    assert not re.search(r"<script(?![^>]*\bsrc=)", text), "no inline script"


def test_the_csv_has_the_same_figures_and_names_the_period(
    client: FlaskClient, runtime: Runtime, demo: Demo, history: dict
) -> None:
    sign_in(client)
    response = client.get(f"/staff/reports.csv?{Q1}&protocol=depression_review")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = csv_rows(response.text)
    assert rows[("period", "all", "from")] == "2026-01-01"
    assert rows[("period", "all", "protocol")] == "depression_review"
    expected = reach_of(runtime, demo, "depression_review")
    assert rows[("reach", "all", "due")] == str(expected.due)
    assert rows[("reach", "all", "response_rate")] == str(round(expected.response_rate, 4))
    assert rows[("safety", "all", "raised")] == "3"
    assert rows[("outcomes", "phq9 6 weeks", "paired")] == "5"
    assert rows[("outcomes", "who5 6 weeks", "improved_share")] == ""  # no pairs: no share
    assert ("outcomes", "who5 6 weeks", "at_caseness") not in rows


def test_nothing_in_the_page_or_csv_identifies_a_patient(
    client: FlaskClient, history: dict, demo: Demo
) -> None:
    sign_in(client)
    both = client.get(f"/staff/reports?{Q1}").text + client.get(f"/staff/reports.csv?{Q1}").text
    people = [p for h in history.values() for p in h.patients] + list(demo.patients)
    for person in people:
        assert person.name not in both and person.id not in both
        assert person.phone not in both and person.phone[3:] not in both
        if person.nhs_number:
            assert person.nhs_number not in both


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-02-30&to=2026-03-31", "The start date must be a real date"),
        ("from=yesterday", "The start date must be a real date"),
        ("from=2026-03-01&to=2026-01-01", "The start date must be the same as or before"),
        ("to=1999-12-31", "The end date must be between 2000 and next year"),
        (f"{Q1}&protocol=nonsense", "Choose a protocol from the list"),
    ],
)
def test_bad_filters_get_an_error_summary_not_a_report(
    client: FlaskClient, history: dict, query: str, message: str
) -> None:
    sign_in(client)
    page = client.get(f"/staff/reports?{query}")
    assert page.status_code == 400
    assert "There is a problem" in page.text and message in page.text
    assert 'id="reach-table"' not in page.text
    flat = client.get(f"/staff/reports.csv?{query}")
    assert flat.status_code == 400 and message in flat.text
    assert flat.mimetype == "text/plain"


def test_without_a_filter_the_last_ninety_days_are_shown(
    client: FlaskClient, history: dict, clock: Clock
) -> None:
    sign_in(client)
    page = client.get("/staff/reports")
    assert page.status_code == 200
    # the clock is 2 March 2026: 90 days back is 3 December 2025
    assert "Showing 3 December 2025 to 2 March 2026, all protocols." in page.text
    assert 'href="/staff/reports.csv?from=2025-12-03&amp;to=2026-03-02"' in page.text
