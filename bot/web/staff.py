"""The staff pages under /staff: sign in, see the practice's alerts, acknowledge them.

Thin views over the service layer. Everyone signs in (Flask-Login, werkzeug
password hashes) and sees only their own practice: another practice's alert
or patient is a 404, exactly like an id that does not exist. Every form
carries a CSRF token (Flask-WTF), checked before any view runs; the rest of
the app (Twilio's signed webhooks, the bearer-token API) is left to its own
checks.

Signing in fails the same way, taking about the same time, whether or not
the e-mail address belongs to anyone, and repeated failures for one address
or from one client are refused for a while (``STAFF_LOGIN_MAX_FAILURES`` per
address, ``STAFF_LOGIN_MAX_FAILURES_PER_CLIENT`` per client address, within
``STAFF_LOGIN_WINDOW_SECONDS``; kept in the process, so per worker).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from wtforms import PasswordField, RadioField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from bot.errors import NotFound
from bot.instruments import Catalogue
from bot.schemas.records import ResultOut, note_problem
from bot.services import alert_reach, clinical_record, follow_ups, queries, staff_sign_in
from bot.services.alert_acknowledgement import KEEPS_OPEN, NOTE_LIMIT, OUTCOMES
from bot.services.alert_acknowledgement import acknowledge_alert as acknowledge
from bot.store.models import Invitation, Practice, StaffUser
from bot.web import context, patient_page, roles
from bot.web.roles import ALL_STAFF, HEALTH_DATA, public, requires

bp = Blueprint("staff", __name__, url_prefix="/staff")
login_manager = LoginManager()
csrf = CSRFProtect()

FLAG_LABELS = {
    "self_harm_risk": "Possible risk of self-harm",
    "severe_score": "Severe score",
    "callback_requested": "Patient asked for a call back",
}
CHANNEL_LABELS = {"email": "e-mail", "sms": "SMS"}
KIND_LABELS = {"notify": "new alert", "fallback": "fallback", "escalate": "escalation"}
# An alert's history, from the audit log: what each entry means to a clinician.
HISTORY_LABELS = {
    "alert.raised": "Alert raised.",
    "alert.notified": "Notices to the clinicians on duty were queued.",
    "alert.fallback.nobody_on_duty": "Nobody was on duty, so the escalation contacts and the "
    "practice's contact e-mail were told instead.",
    "alert.fallback.on_duty_unreachable": "No clinician on duty could be told (no mobile, and "
    "e-mail alerts are off), so the escalation contacts and the practice's contact e-mail were "
    "told instead.",
    "alert.fallback.notices_failed": "No notice to the clinicians on duty got through, so the "
    "escalation contacts and the practice's contact e-mail were told instead.",
    "alert.notify_unsent": "Nobody could be told: no one on duty or among the escalation "
    "contacts can be reached, and the practice's contact e-mail cannot be used.",
    "alert.fallback_unsent": "Nobody else could be told: no escalation contact can be reached, "
    "and the practice's contact e-mail cannot be used.",
    "alert.escalated": "Not acknowledged in time: escalated to the escalation contacts and the "
    "clinicians on duty.",
    "alert.escalation_unsent": "Due for escalation, but nobody could be told.",
    "alert.acknowledged": "Acknowledged.",
}
# The header's navigation, in order: (path, label). An item shows only once its page
# exists and the signed-in member's role may open it (the page's own guard decides).
NAVIGATION = (
    ("/staff/patients", "Patients"),
    ("/staff/followups", "Follow-ups"),
    ("/staff/alerts", "Alerts"),
    ("/staff/reports", "Reports"),
    ("/staff/settings", "Settings"),
)
# Where each role starts: the first of these pages that exists and it may open.
START_PAGES = {
    roles.ADMIN: ("/staff/alerts", "/staff/patients"),
    roles.CLINICIAN: ("/staff/alerts", "/staff/patients"),
    roles.RECEPTION: ("/staff/patients", "/staff/followups", "/staff/alerts"),
}
# What the pages load, all from this server (the content security policy allows no other).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SIGN_IN_FAILED = "That e-mail address and password do not match an account."
TOO_MANY = "Too many failed sign-ins. Wait a few minutes, then try again."


def init_app(app: Flask) -> None:
    """Flask-Login and CSRF protection for the staff pages."""
    # CSRFProtect checks no request by itself (the webhook and the API have their own
    # authentication and no forms); the staff blueprint asks it to check every POST.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 60 * 60)  # a clinic session
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "staff.login"
    login_manager.login_message = "Please sign in to see that page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)
    app.extensions["prombot.login_limiter"] = LoginLimiter()
    roles.init_app(app)
    app.add_url_rule("/", "home", home)
    app.after_request(_security_headers)
    app.add_template_global(_staff_header, "staff_header")
    app.add_template_global(_may_open, "may_open")


def home():
    """The site's root: staff to their start page, everyone else to sign in."""
    if current_user.is_authenticated:
        return redirect(start_page())
    return redirect(url_for("staff.login"))


def start_page() -> str:
    """The signed-in member's start page: alerts for clinicians and admins, patients for
    reception (or the first of its pages that exists)."""
    for path in START_PAGES.get(current_user.role, ()):
        endpoint = _endpoint_of(path)
        if endpoint and roles.allowed(endpoint, current_user.role):
            return path
    return url_for("staff.start")


def _endpoint_of(path: str) -> str | None:
    """The endpoint a GET of ``path`` reaches, or None if no page answers there yet."""
    try:
        endpoint, _ = current_app.url_map.bind("").match(path, method="GET")
    except HTTPException:
        return None
    return endpoint


def _staff_header() -> dict[str, object]:
    """The header and banner every staff page shows: navigation for this member's role and
    the practice's urgent alert counts (called by staff/base.html, so only staff pages pay)."""
    if not current_user.is_authenticated:
        return {"navigation": [], "open_urgent": 0, "unreached_urgent": 0, "count_poll_seconds": 0}
    counts = queries.header_counts(context.runtime(), current_user.practice_id)
    navigation = []
    for path, label in NAVIGATION:
        endpoint = _endpoint_of(path)
        if endpoint and roles.allowed(endpoint, current_user.role):
            current = request.path == path or request.path.startswith(path + "/")
            count = counts.open_urgent if path == "/staff/alerts" else None
            navigation.append({"href": path, "label": label, "current": current, "count": count})
    return {
        "navigation": navigation,
        "open_urgent": counts.open_urgent,
        "unreached_urgent": counts.unreached_urgent,
        "count_poll_seconds": context.runtime().settings.staff_count_poll_seconds,
    }


def _may_open(endpoint: str) -> bool:
    """Whether the signed-in member may open ``endpoint``'s page (for links in templates)."""
    role = current_user.role if current_user.is_authenticated else None
    return roles.allowed(endpoint, role)


def _security_headers(response):
    """Staff pages hold patient data: never cached, framed, sniffed or sent on as a referrer,
    and nothing runs or loads from anywhere but this server (no inline script or style)."""
    if request.path == "/" or request.path.startswith("/staff"):
        response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    return response


# -- who is signed in ----------------------------------------------------------------------


class StaffPrincipal:
    """The signed-in member of staff, as Flask-Login sees them (not a database row)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: StaffUser, practice: Practice) -> None:
        self.id = user.id
        self.name = user.name
        self.role = user.role
        self.practice_id = practice.id
        self.practice_name = practice.name
        self.timezone = practice.timezone
        self.must_change_password = user.must_change_password  # see bot/web/passwords.py
        self._session_id = f"{user.id}.{staff_sign_in.password_tag(user.password_hash)}"

    def get_id(self) -> str:
        # A new password ends every session signed in with the old one.
        return self._session_id


def _load_user(session_id: str) -> StaffPrincipal | None:
    user_id, _, tag = session_id.partition(".")
    if not user_id or not tag:
        return None
    found = staff_sign_in.signed_in(context.runtime(), user_id, tag)
    return StaffPrincipal(*found) if found else None


class LoginLimiter:
    """Failed sign-ins per key within a window, in memory, bounded in size."""

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, limits: dict[str, int], window: float) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(key, now, window)) >= n for key, n in limits.items())

    def failed(self, keys: list[str], window: float) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now, window).append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > self.MAX_KEYS:
                self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float, window: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        return times


# -- forms ---------------------------------------------------------------------------------


def _note_rule(form: FlaskForm, field) -> None:
    """The note's rule, the API's too (``bot.schemas.records.note_problem``)."""
    problem = note_problem(field.data or "")
    if problem is not None:
        raise ValidationError(problem)


class LoginForm(FlaskForm):
    email = StringField(
        "E-mail address",
        validators=[DataRequired("Enter your e-mail address"), Length(max=254)],
    )
    password = PasswordField(
        "Password", validators=[DataRequired("Enter your password"), Length(max=1024)]
    )
    submit = SubmitField("Sign in")


class AcknowledgeForm(FlaskForm):
    outcome = RadioField(
        "What did you do?",
        choices=list(OUTCOMES),  # the template labels them
        validators=[InputRequired("Choose what you did about this alert")],
    )
    note = TextAreaField(
        "Note (optional)",
        validators=[Optional(), _note_rule],
    )
    submit = SubmitField("Record")


class LogoutForm(FlaskForm):
    submit = SubmitField("Sign out")


# -- plumbing ------------------------------------------------------------------------------


def check_csrf(blueprint: Blueprint) -> None:
    """Check the CSRF token of every request to ``blueprint`` that is not a read."""

    @blueprint.before_request
    def _check_csrf() -> None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()


check_csrf(bp)


def staff_errors(blueprint: Blueprint) -> None:
    """NHS.UK-styled error pages for a blueprint of staff pages (this one, and any other
    under /staff that calls it): expired form 400, no access 403, not found 404."""

    @blueprint.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        page = render_template("staff/error.html", title="Form expired", reason=exc.description)
        return page, 400

    @blueprint.errorhandler(403)
    def _forbidden(_exc: Exception):
        return render_template("staff/error.html", title="No access", forbidden=True), 403

    @blueprint.errorhandler(NotFound)
    def _not_found(_exc: NotFound):
        return render_template("staff/error.html", title="Not found", reason=None), 404

    @blueprint.errorhandler(404)
    def _abort_not_found(_exc: Exception):
        return render_template("staff/error.html", title="Not found", reason=None), 404


staff_errors(bp)


@bp.app_template_filter("staff_time")
def _staff_time(value: datetime | None, zone: str = "Europe/London") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime("%a %d %b %Y, %H:%M")


@bp.app_template_filter("flag_label")
def _flag_label(flag: str) -> str:
    return FLAG_LABELS.get(flag, flag.replace("_", " ").capitalize())


def _safe_next(target: str | None) -> str | None:
    """Only a path inside the staff pages: never another site (no open redirect)."""
    if not target or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/staff/"):
        return None
    return target


# -- signing in and out --------------------------------------------------------------------


@bp.get("/")
@requires(*ALL_STAFF)
def index():
    return redirect(start_page())


@bp.get("/start")
@requires(*ALL_STAFF)
def start():
    """Where a member whose role has no page yet lands."""
    return render_template("staff/start.html")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    target = _safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(target or start_page())
    form = LoginForm()
    status, problems = 200, []
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        settings = context.runtime().settings
        window = float(settings.staff_login_window_seconds)
        email_key = "email:" + hashlib.sha256(email.encode()).hexdigest()
        client_key = f"client:{request.remote_addr or '-'}"
        limits = {
            email_key: settings.staff_login_max_failures,
            client_key: settings.staff_login_max_failures_per_client,
        }
        limiter: LoginLimiter = current_app.extensions["prombot.login_limiter"]
        if limiter.blocked(limits, window):
            problems.append(("email", TOO_MANY))
            status = 429
        else:
            found = staff_sign_in.sign_in(
                context.runtime(), email, form.password.data or "", now=context.now()
            )
            principal = StaffPrincipal(*found) if found else None
            if principal is None:
                limiter.failed([email_key, client_key], window)
                problems.append(("email", SIGN_IN_FAILED))
                status = 401
            else:
                limiter.clear(email_key)
                session.clear()  # nothing from before signing in carries over
                login_user(principal)
                return redirect(target or start_page())
    elif form.is_submitted():  # the CSRF token was checked before the view ran
        problems = [(form[name].id, errors[0]) for name, errors in form.errors.items()]
    return render_template("staff/login.html", form=form, next=target, problems=problems), status


@bp.route("/logout", methods=["GET", "POST"])
@public
def logout():
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("staff.login"))
        return render_template("staff/logout.html", form=LogoutForm())
    if current_user.is_authenticated:
        staff_sign_in.sign_out(
            context.runtime(), current_user.id, current_user.practice_id, now=context.now()
        )
        logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("staff.login"))


# -- alerts --------------------------------------------------------------------------------


def _inbox_filters() -> tuple[str, str]:
    """The inbox's filters from the query string; anything unknown is the default."""
    state = request.args.get("state", "open")
    severity = request.args.get("severity", "all")
    return (
        state if state in queries.INBOX_STATES else "open",
        severity if severity in queries.INBOX_SEVERITIES else "all",
    )


def _inbox_context() -> dict[str, object]:
    state, severity = _inbox_filters()
    inbox = queries.alert_inbox(
        context.runtime(), current_user.practice_id, state=state, severity=severity
    )
    return {
        "practice": inbox.practice,
        "rows": inbox.rows,
        "whys": inbox.whys,
        "notices": inbox.notices,
        "unreached": inbox.unreached,
        "more": inbox.more,
        "state": state,
        "severity": severity,
        "channel_labels": CHANNEL_LABELS,
        "outcome_labels": OUTCOMES,
        "poll_seconds": context.runtime().settings.staff_inbox_poll_seconds,
    }


@bp.get("/alerts")
@requires(*HEALTH_DATA)
def alerts():
    """The inbox: urgent first, then oldest; filtered by a plain GET form. It refreshes its
    rows by itself (htmx polls ``alerts_fragment``); without JavaScript, reload the page."""
    return render_template("staff/alerts.html", **_inbox_context())


@bp.get("/alerts/fragment")
@requires(*HEALTH_DATA)
def alerts_fragment():
    """The inbox's rows alone, for htmx to swap in (same filters as the page)."""
    return render_template("staff/_alert_inbox.html", **_inbox_context())


@bp.get("/alerts/count")
@requires(*HEALTH_DATA)
def alerts_count():
    """The header's open urgent count alone, for htmx to swap in on every staff page."""
    counts = queries.header_counts(context.runtime(), current_user.practice_id)
    return render_template(
        "staff/_alert_count.html",
        count=counts.open_urgent,
        poll_seconds=context.runtime().settings.staff_count_poll_seconds,
    )


@bp.get("/alerts/<alert_id>")
@requires(*HEALTH_DATA)
def alert(alert_id: str):
    return _alert_page(alert_id, AcknowledgeForm(), problems=[])


def _alert_page(alert_id: str, form: AcknowledgeForm, *, problems: list, status: int = 200):
    rt = context.runtime()
    detail = queries.alert_detail(rt, current_user.practice_id, alert_id)
    catalogue, recorded = rt.catalogue, detail.recorded
    actions = queries.alert_actions(rt, current_user.practice_id, alert_id)
    notes = {(a.at, a.actor, a.outcome): a.note for a in actions}
    names = {entry.actor: _who(entry.actor, user) for entry, user in detail.history}
    scores = (
        queries.latest_scores(rt, current_user.practice_id, detail.patient.id)
        if detail.patient is not None
        else []
    )
    return render_template(
        "staff/alert.html",
        practice=detail.practice,
        alert=detail.alert,
        patient=detail.patient,
        invitation=detail.invitation,
        notices=detail.notices,
        acknowledged_by=_who(detail.acknowledged_by, detail.acknowledged_by_user),
        history=[
            (entry, _history_text(entry, user), _history_note(entry, notes))
            # within one instant, what was done before the acknowledgement it led to
            for entry, user in sorted(
                detail.history,
                key=lambda pair: (pair[0].at, not pair[0].action.startswith("alert.outcome.")),
            )
        ],
        reached_nobody=detail.reached_nobody,
        channel_labels=CHANNEL_LABELS,
        kind_labels=KIND_LABELS,
        recorded=detail.recorded,
        recorded_label=(
            queries.option_label(catalogue, recorded.instrument, recorded.item, recorded.value)
            if recorded
            else None
        ),
        question=_question(catalogue, detail.invitation, detail.alert.item),
        why=detail.why,
        scores=[
            (catalogue[r.instrument].short_title if r.instrument in catalogue else r.instrument, r)
            for r in scores
        ],
        band_labels=_band_labels(catalogue),
        attempts=[a for a in actions if a.outcome in KEEPS_OPEN],
        # what was done, by whom and when: every outcome recorded, oldest first
        outcomes_done=[
            (a, names.get(a.actor) or _who(a.actor, None), OUTCOMES.get(a.outcome, a.outcome))
            for a in actions
        ],
        outcome_labels=OUTCOMES,
        keeps_open=KEEPS_OPEN,
        note_limit=NOTE_LIMIT,
        form=form,
        problems=problems,
    ), status


def _band_labels(catalogue: Catalogue) -> dict[tuple[str, str], str]:
    return {(i, b.id): b.label for i in catalogue for b in catalogue[i].bands}


def _question(catalogue: Catalogue, invitation: Invitation | None, item: str | None) -> str | None:
    """The wording of the question an alert came from, for the clinician."""
    if item is None or invitation is None:
        return None
    for instrument_id in (invitation.instrument, *catalogue):
        instrument = catalogue.get(instrument_id)
        if instrument is not None and item in instrument.item_ids:
            return instrument.item(item).text
    return None


def _history_text(entry: alert_reach.HistoryEntry, user: StaffUser | None) -> str:
    notice = entry.notice
    if notice is not None:
        to = notice.recipient_name or "the practice's contact e-mail"
        how = CHANNEL_LABELS.get(notice.channel, notice.channel)
        what = KIND_LABELS.get(notice.kind, notice.kind)
        outcome = entry.action.removeprefix("alert_notification.")
        return f"{how[:1].upper()}{how[1:]} to {to} ({what}): {outcome}."
    if entry.action == "alert.acknowledged":
        return f"Acknowledged by {_who(entry.actor, user)}."
    if entry.action.startswith("alert.outcome."):
        outcome = entry.action.removeprefix("alert.outcome.")
        label = OUTCOMES.get(outcome, outcome.replace("_", " "))
        still_open = " The alert stays open." if outcome in KEEPS_OPEN else ""
        return f"{label}: recorded by {_who(entry.actor, user)}.{still_open}"
    return HISTORY_LABELS.get(entry.action, entry.action)


def _history_note(entry: alert_reach.HistoryEntry, notes: dict) -> str | None:
    if not entry.action.startswith("alert.outcome."):
        return None
    return notes.get((entry.at, entry.actor, entry.action.removeprefix("alert.outcome.")))


@bp.post("/alerts/<alert_id>/acknowledge")
@requires(*HEALTH_DATA)
def acknowledge_alert(alert_id: str):
    form = AcknowledgeForm()
    if not form.is_submitted():
        abort(400)
    if not form.validate():
        problems = [(form[name].id, errors[0]) for name, errors in form.errors.items()]
        if "csrf_token" in form.errors:
            abort(400)
        return _alert_page(alert_id, form, problems=problems, status=400)
    actor, now = f"user:{current_user.id}", context.now()
    outcome, note = form.outcome.data, _note(form.note.data)
    acknowledged = acknowledge(
        context.runtime(),
        current_user.practice_id,
        alert_id,
        actor=actor,
        now=now,
        outcome=outcome,
        note=note,
    )
    if outcome in KEEPS_OPEN and acknowledged.status == "open":
        flash("Attempt recorded. The alert stays open and escalation continues.", "info")
    elif (acknowledged.acknowledged_by, acknowledged.acknowledged_at) == (actor, now):
        flash("Alert acknowledged. Escalation has stopped.", "info")
    else:
        flash("Someone had already acknowledged this alert.", "info")
    return redirect(url_for("staff.alert", alert_id=alert_id))


def _note(text: str | None) -> str | None:
    text = (text or "").replace("\r\n", "\n").strip()
    return text or None


def _who(actor: str | None, user: StaffUser | None) -> str | None:
    """A readable name for an audit actor of this practice."""
    if not actor:
        return None
    kind = actor.partition(":")[0]
    if kind == "user":
        return user.name if user is not None else "a former member of staff"
    if kind == "token":
        return "the practice's system (API)"
    return actor


# -- a patient's results -------------------------------------------------------------------


@bp.get("/patients/<patient_id>")
@requires(*ALL_STAFF)
def patient(patient_id: str):
    """Every role: details, opt-out, consultations and follow-ups, scheduling. Scores,
    answers and alerts are read (and shown) only for the roles that may see health data."""
    from bot.web import patient_pages  # its blueprint registers after this one

    rt = context.runtime()
    overview = follow_ups.patient_overview(
        rt, current_user.practice_id, patient_id, rt.catalogue, now=context.now()
    )
    health: dict = {}
    if current_user.role in HEALTH_DATA:
        record = queries.patient_record(rt, current_user.practice_id, patient_id)
        health = {
            "results": [
                {**ResultOut.of(r).model_dump(mode="json"), "finished": r.finished_at}
                for r in record.results
            ],
            "alerts": record.alerts,
            **patient_page.context(rt, rt.catalogue, current_user.practice_id, patient_id),
        }
    return render_template(
        "staff/patient.html",
        practice=overview.practice,
        patient=overview.patient,
        overview=overview,
        health_data=bool(health),
        schedule=patient_pages.schedule_form(overview.practice),
        schedule_problems=[],
        **health,
    )


@bp.get("/patients/<patient_id>/transcript")
@requires(*HEALTH_DATA)
def patient_transcript(patient_id: str):
    found = clinical_record.transcript(context.runtime(), current_user.practice_id, patient_id)
    return render_template(
        "staff/transcript.html", practice=found.practice, patient=found.patient, lines=found.lines
    )
