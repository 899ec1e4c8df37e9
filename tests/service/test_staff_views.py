"""The staff pages through Flask's test client, on SQLite and PostgreSQL.

Signing in (no user enumeration, failures limited), CSRF on every form, one
practice's view of its own alerts only, and acknowledging through the page.
The real-browser walk-through is tests/e2e/test_staff_pages.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select
from werkzeug.security import generate_password_hash

from bot.services.demo import DEMO_PASSWORD, Demo
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Alert, AuditEvent, Patient, StaffUser
from tests.service.alerting import (
    STAFF_PASSWORD,
    add_alert,
    other_practice,
    raise_urgent,
)
from tests.service.conftest import Clock
from tests.support import TEST_PASSWORD_HASH

RILEY = "dr.riley@demo.prombot.test"
SIGN_IN_FAILED = "That e-mail address and password do not match an account."


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(client: FlaskClient, email: str = RILEY, password: str = DEMO_PASSWORD, **kw):
    page = client.get("/staff/login")
    data = {"csrf_token": csrf_token(page.text), "email": email, "password": password}
    return client.post("/staff/login", data=data, **kw)


@pytest.fixture
def alex(demo: Demo) -> Patient:
    return next(p for p in demo.patients if p.name == "Alex Example")


@pytest.fixture
def signed_in(client: FlaskClient, demo: Demo) -> FlaskClient:
    response = sign_in(client)
    assert response.status_code == 302, response.text
    return client


def staff_id(runtime: Runtime, email: str) -> str:
    with transaction(runtime.engine, read_only=True) as session:
        return session.exec(select(StaffUser).where(StaffUser.email == email)).one().id


# -- signing in --------------------------------------------------------------------------


def test_signing_in_takes_the_clinician_to_the_alerts(
    client: FlaskClient, runtime: Runtime, demo: Demo
) -> None:
    assert client.get("/staff/alerts").status_code == 302
    response = sign_in(client, email="  Dr.Riley@Demo.Prombot.Test ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/alerts"
    page = client.get("/staff/alerts")
    assert page.status_code == 200
    assert "Dr Sam Riley" in page.text and "Demo Surgery" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    riley = staff_id(runtime, RILEY)
    with transaction(runtime.engine, read_only=True) as session:
        actions = [(e.actor, e.action) for e in session.exec(select(AuditEvent)).all()]
    assert (f"user:{riley}", "staff.signed_in") in actions


def test_a_wrong_password_and_an_unknown_address_fail_alike(
    client: FlaskClient, demo: Demo
) -> None:
    wrong = sign_in(client, password="not-the-password")
    unknown = sign_in(client, email="nobody@demo.prombot.test", password="not-the-password")
    for response in [wrong, unknown]:
        assert response.status_code == 401
        assert SIGN_IN_FAILED in response.text
    assert re.sub(r'value="[^"]*"', "", wrong.text) == re.sub(r'value="[^"]*"', "", unknown.text)
    assert client.get("/staff/alerts").status_code == 302


def test_repeated_failures_for_an_address_are_refused_for_a_while(
    app: Flask, client: FlaskClient, runtime: Runtime, demo: Demo, clock: Clock
) -> None:
    limit = runtime.settings.staff_login_max_failures
    for _ in range(limit):
        assert sign_in(client, password="guess").status_code == 401
    refused = sign_in(client)  # even the right password, for now
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    # Unknown addresses are limited the same way: nothing tells them apart.
    for _ in range(limit):
        assert sign_in(client, email="nobody@demo.prombot.test").status_code == 401
    assert sign_in(client, email="nobody@demo.prombot.test").status_code == 429
    # Someone else at the practice can still sign in.
    with transaction(runtime.engine) as session:
        admin = session.exec(
            select(StaffUser).where(StaffUser.email == "admin@demo.prombot.test")
        ).one()
        admin.password_hash = generate_password_hash(STAFF_PASSWORD, TEST_PASSWORD_HASH)
    assert (
        sign_in(client, email="admin@demo.prombot.test", password=STAFF_PASSWORD).status_code == 302
    )


def test_a_sign_in_without_the_csrf_token_is_refused(client: FlaskClient, demo: Demo) -> None:
    response = client.post("/staff/login", data={"email": RILEY, "password": DEMO_PASSWORD})
    assert response.status_code == 400
    assert client.get("/staff/alerts").status_code == 302


def test_after_signing_in_the_link_followed_is_opened_but_never_another_site(
    client: FlaskClient, runtime: Runtime, clock: Clock, alex: Patient
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    first = client.get(f"/staff/alerts/{alert_id}")
    assert first.status_code == 302
    login_url = first.headers["Location"]
    assert login_url.startswith("/staff/login?next=")
    page = client.get(login_url)
    response = client.post(
        login_url,
        data={"csrf_token": csrf_token(page.text), "email": RILEY, "password": DEMO_PASSWORD},
    )
    assert response.headers["Location"] == f"/staff/alerts/{alert_id}"
    client.post("/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/alerts").text)})

    for evil in ["//evil.example/x", "https://evil.example/staff/", "/\\evil.example", "/api/v1"]:
        page = client.get("/staff/login", query_string={"next": evil})
        response = client.post(
            "/staff/login",
            query_string={"next": evil},
            data={"csrf_token": csrf_token(page.text), "email": RILEY, "password": DEMO_PASSWORD},
        )
        assert response.headers["Location"] == "/staff/alerts", evil
        client.post(
            "/staff/logout", data={"csrf_token": csrf_token(client.get("/staff/alerts").text)}
        )


def test_signing_out_needs_the_token_and_ends_the_session(signed_in: FlaskClient) -> None:
    assert signed_in.post("/staff/logout").status_code == 400
    assert signed_in.get("/staff/alerts").status_code == 200
    confirm = signed_in.get("/staff/logout")
    assert confirm.status_code == 200
    response = signed_in.post("/staff/logout", data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 302
    assert signed_in.get("/staff/alerts").status_code == 302


def test_a_new_password_ends_sessions_signed_in_with_the_old_one(
    signed_in: FlaskClient, runtime: Runtime
) -> None:
    assert signed_in.get("/staff/alerts").status_code == 200
    with transaction(runtime.engine) as session:
        user = session.exec(select(StaffUser).where(StaffUser.email == RILEY)).one()
        user.password_hash = generate_password_hash("a-brand-new-password", TEST_PASSWORD_HASH)
    assert signed_in.get("/staff/alerts").status_code == 302


# -- the alerts --------------------------------------------------------------------------


def test_the_list_shows_the_practices_alerts_urgent_first(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo, alex: Patient
) -> None:
    bo = next(p for p in demo.patients if p.name == "Bo Sample")
    routine = add_alert(runtime, bo, clock.now, flag="severe_score", severity="routine")
    info = add_alert(
        runtime, bo, clock.now + timedelta(minutes=1), flag="phq2_positive", severity="information"
    )
    urgent = raise_urgent(runtime, alex, clock.now - timedelta(minutes=5))  # the oldest
    other = other_practice(runtime, clock.now)
    theirs = raise_urgent(runtime, other.patient, clock.now, to=other.practice.sms_number)

    page = signed_in.get("/staff/alerts")
    assert page.status_code == 200
    order = re.findall(r'data-alert-id="([0-9a-f]+)"', page.text)
    assert order == [urgent, routine, info]
    assert theirs not in page.text and other.patient.name not in page.text
    assert "Alex Example" in page.text and "Bo Sample" in page.text
    assert "Possible risk of self-harm" in page.text


def test_an_alert_is_acknowledged_through_its_page(
    signed_in: FlaskClient,
    client: FlaskClient,
    runtime: Runtime,
    clock: Clock,
    demo: Demo,
    alex: Patient,
    api_headers: dict[str, str],
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    page = signed_in.get(f"/staff/alerts/{alert_id}")
    assert page.status_code == 200
    assert "Alex Example" in page.text and alex.nhs_number in page.text
    assert f'href="/staff/patients/{alex.id}"' in page.text
    assert 'id="alert-status" class="status-open"' in page.text

    # Without the token: refused, and nothing changes.
    refused = signed_in.post(f"/staff/alerts/{alert_id}/acknowledge")
    assert refused.status_code == 400
    refused = signed_in.post(f"/staff/alerts/{alert_id}/acknowledge", data={"csrf_token": "forged"})
    assert refused.status_code == 400
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Alert, alert_id).status == "open"

    clock.advance(minutes=3)
    response = signed_in.post(
        f"/staff/alerts/{alert_id}/acknowledge",
        data={"csrf_token": csrf_token(page.text), "outcome": "contacted"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/alerts/{alert_id}"
    page = signed_in.get(f"/staff/alerts/{alert_id}")
    assert "Alert acknowledged" in page.text
    assert 'id="alert-status" class="status-acknowledged"' in page.text
    assert "by Dr Sam Riley" in page.text
    assert "/acknowledge" not in page.text  # no button any more

    riley = staff_id(runtime, RILEY)
    with transaction(runtime.engine, read_only=True) as session:
        alert = session.get(Alert, alert_id)
        assert (alert.status, alert.acknowledged_by) == ("acknowledged", f"user:{riley}")
        assert alert.acknowledged_at == clock.now
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "alert.acknowledged")
        ).all()
    assert [(e.actor, e.subject_id) for e in events] == [(f"user:{riley}", alert_id)]
    (listed,) = client.get("/api/v1/alerts?status=acknowledged", headers=api_headers).json
    assert (listed["id"], listed["acknowledged_by"]) == (alert_id, f"user:{riley}")


def test_another_practices_alert_and_patient_are_not_found(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo
) -> None:
    other = other_practice(runtime, clock.now)
    theirs = raise_urgent(runtime, other.patient, clock.now, to=other.practice.sms_number)
    page = signed_in.get("/staff/alerts")
    for path in [
        f"/staff/alerts/{theirs}",
        "/staff/alerts/0123456789abcdef0123456789abcdef",
        "/staff/alerts/%00",
        f"/staff/patients/{other.patient.id}",
    ]:
        response = signed_in.get(path)
        assert response.status_code == 404, path
        assert other.patient.name not in response.text
    response = signed_in.post(
        f"/staff/alerts/{theirs}/acknowledge",
        data={"csrf_token": csrf_token(page.text), "outcome": "contacted"},
    )
    assert response.status_code == 404
    with transaction(runtime.engine, read_only=True) as session:
        assert session.get(Alert, theirs).status == "open"


def test_the_patient_page_shows_their_results_and_alerts(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, alex: Patient
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    page = signed_in.get(f"/staff/patients/{alex.id}")
    assert page.status_code == 200
    assert "Alex Example" in page.text
    assert "No questionnaires finished yet." in page.text
    assert f"/staff/alerts/{alert_id}" in page.text


def test_the_api_and_webhook_need_no_csrf_token(
    client: FlaskClient, runtime: Runtime, clock: Clock, alex: Patient, api_headers: dict[str, str]
) -> None:
    alert_id = raise_urgent(runtime, alex, clock.now)
    response = client.post(
        f"/api/v1/alerts/{alert_id}/acknowledge",
        headers=api_headers,
        json={"outcome": "contacted"},
    )
    assert response.status_code == 200
    assert response.json["status"] == "acknowledged"


# -- cookies and proxies -------------------------------------------------------------------


def _cookie_attributes(response, name: str) -> set[str]:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]} | {
        part.strip().lower() for part in header.split(";")[1:] if part.strip().startswith("Same")
    }


def test_over_https_the_session_cookie_is_secure_httponly_and_same_site(
    app: Flask, client: FlaskClient, demo: Demo
) -> None:
    assert app.config["PUBLIC_BASE_URL"].startswith("https://")
    response = sign_in(client)
    assert response.status_code == 302
    attributes = _cookie_attributes(response, app.config["SESSION_COOKIE_NAME"])
    assert {"secure", "httponly", "samesite=lax"} <= attributes
    # the remember-me cookie, were it ever set, follows the same rules
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_over_plain_http_the_cookie_is_not_secure_so_that_local_runs_work(
    database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    from bot.app import create_app
    from bot.services.demo import seed_demo

    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
            "PROMBOT_CLOCK": clock,
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    try:
        with transaction(app.extensions["prombot.runtime"].engine) as session:
            seed_demo(session, clock.now)
        response = sign_in(app.test_client())
        assert response.status_code == 302
        attributes = _cookie_attributes(response, app.config["SESSION_COOKIE_NAME"])
        assert "secure" not in attributes
        assert {"httponly", "samesite=lax"} <= attributes
    finally:
        app.extensions["prombot.runtime"].engine.dispose()


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "client_address", "scheme"),
    [
        (0, "203.0.113.7", "127.0.0.1", "http"),  # no proxy: the header is anyone's claim
        (1, "203.0.113.7", "203.0.113.7", "https"),
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7", "https"),  # only the last hop
        (2, "198.51.100.1, 203.0.113.7", "198.51.100.1", "https"),
    ],
)
def test_behind_a_proxy_the_client_address_is_the_forwarded_one_for_that_many_hops(
    tmp_path, monkeypatch: pytest.MonkeyPatch, hops: int, forwarded_for: str, client_address: str,
    scheme: str,
) -> None:  # fmt: skip
    from flask import request

    from bot.app import create_app

    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
            "SECRET_KEY": "x",
            "PROMBOT_PROXY_HOPS": hops,
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )

    @app.get("/_seen")
    def seen():
        return {"address": request.remote_addr, "scheme": request.scheme}

    answer = app.test_client().get(
        "/_seen",
        headers={  # each proxy appends to both headers
            "X-Forwarded-For": forwarded_for,
            "X-Forwarded-Proto": ", ".join(["https"] * len(forwarded_for.split(","))),
        },
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert answer.json == {"address": client_address, "scheme": scheme}
    app.extensions["prombot.runtime"].engine.dispose()


# -- the front end: served from npm's packages, nothing inline -----------------------------


def _fake_assets(root) -> None:
    for path, text in {
        "nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.css": (
            "html{font-family:Frutiger W01,arial}@font-face{font-family:Frutiger W01;"
            'src:url(https://assets.nhs.uk/fonts/F.woff2) format("woff2")}body{margin:0}'
        ),
        "nhsuk-frontend/dist/nhsuk/nhsuk-frontend.min.js": "export{}",
        "nhsuk-frontend/dist/nhsuk/index.scss": "$x: 1;",
        "nhsuk-frontend/dist/nhsuk/components/button/template.njk": "{{ x }}",
        "nhsuk-frontend/dist/nhsuk/assets/images/favicon.ico": "icon",
        "nhsuk-frontend/package.json": "{}",
        "htmx.org/dist/htmx.min.js": "var htmx",
        "htmx.org/dist/.hidden.js": "secret",
        "axe-core/axe.min.js": "var axe",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_only_the_packages_built_files_are_served_from_the_assets_folder(
    database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import create_app

    _fake_assets(tmp_path / "node_modules")
    monkeypatch.setenv("PROMBOT_INSTANCE", str(tmp_path / "instance"))
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "x",
            "PROMBOT_ASSETS_DIR": str(tmp_path / "node_modules"),
            "PROMBOT_SKIP_LOGGING_SETUP": True,
        }
    )
    try:
        client = app.test_client()
        served = {
            "/assets/nhsuk/nhsuk-frontend.min.css": "text/css",
            "/assets/nhsuk/nhsuk-frontend.min.js": "text/javascript",
            "/assets/images/favicon.ico": "image/vnd.microsoft.icon",
            "/assets/htmx/htmx.min.js": "text/javascript",
        }
        for path, kind in served.items():
            with client.get(path) as response:
                assert response.status_code == 200, path
                assert response.mimetype == kind, path
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        # The stylesheet, without the typeface it would fetch from another site (CSP: self).
        css = client.get("/assets/nhsuk/nhsuk-frontend.min.css").text
        assert css == "html{font-family:Frutiger W01,arial}body{margin:0}"
        for path in [
            "/assets/nhsuk/index.scss",  # sources
            "/assets/nhsuk/components/button/template.njk",  # subfolders
            "/assets/nhsuk/missing.css",
            "/assets/nhsuk-frontend/package.json",  # not an allowed folder
            "/assets/axe-core/axe.min.js",  # a test tool, never served
            "/assets/htmx/.hidden.js",
            "/assets/htmx/..%2F..%2Fnhsuk-frontend%2Fpackage.json",
            "/assets/../package.json",
        ]:
            assert client.get(path).status_code == 404, path
    finally:
        app.extensions["prombot.runtime"].engine.dispose()


def test_the_installed_packages_hold_every_file_the_pages_link_to(app: Flask) -> None:
    """``make assets`` (npm ci from package-lock.json) provides what base.html links to."""
    from bot.web.assets import USED, resolve

    root = app.extensions["prombot.runtime"].settings.assets_dir
    assert [name for name in USED if resolve(root, name) is None] == []


def test_every_staff_page_satisfies_its_content_security_policy(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, alex: Patient
) -> None:
    """No inline script, style or event handler, and nothing from another site."""
    alert_id = raise_urgent(runtime, alex, clock.now)
    for path in [
        "/staff/alerts",
        f"/staff/alerts/{alert_id}",
        f"/staff/patients/{alex.id}",
        "/staff/logout",
        "/staff/start",
        "/staff/patients",
    ]:
        page = signed_in.get(path)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        html = page.text
        assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == [], path
        assert "<style" not in html and " style=" not in html, path
        assert re.findall(r"\son[a-z]+=", html) == [], path
        assert re.findall(r'(?:src|href)="(?:https?:)?//', html) == [], path


def test_the_header_shows_the_practice_the_member_and_the_open_urgent_count(
    signed_in: FlaskClient, runtime: Runtime, clock: Clock, demo: Demo, alex: Patient
) -> None:
    raise_urgent(runtime, alex, clock.now)
    bo = next(p for p in demo.patients if p.name == "Bo Sample")
    add_alert(runtime, bo, clock.now, flag="severe_score", severity="routine")
    page = signed_in.get("/staff/alerts").text
    assert re.search(r'id="practice-name">Demo Surgery<', page)
    assert re.search(r'id="signed-in-user">.*Dr Sam Riley', page, re.S)
    assert re.search(r'id="open-urgent-count">1<', page)  # the routine one is not counted
    assert 'aria-current="page"' in page
    nav = re.search(r'id="staff-navigation">(.*?)</ul>', page, re.S).group(1)
    links = re.findall(r'href="([^"]+)"', nav)
    assert "/staff/alerts" in links and "/staff/settings" not in links  # settings: admins only
    for href in links:  # only pages that exist and this member may open
        assert signed_in.get(href).status_code == 200, href
