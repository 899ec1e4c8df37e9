"""The front office's patient pages: enrol, edit, schedule in one step, and each follow-up's
cancel, reschedule and "send now"; and the practice's follow-ups across patients.

- ``/staff/patients/new`` and ``/staff/patients/<id>/edit``: the API's rules
  (``PatientCreate``: UK mobile, NHS number checksum, date of birth, one patient per
  mobile), every problem shown by its field and in an error summary; a duplicate names
  the patient already enrolled, with a link.
- ``POST /staff/patients/<id>/schedule``: a protocol of the practice, or one
  questionnaire after a number of days, from a consultation date (today by default,
  in the practice's time zone), through the API's service (``register_consultation``).
- Per follow-up (``/staff/followups/<id>/...``) and per consultation: the services behind
  the API's cancel, reschedule and ``PATCH /invitations/<id>``; each audited as
  ``user:<id>``.
- ``/staff/followups``: the practice's sends by state and date, a page at a time,
  failed and expired ones included.

Open to every member of staff: nothing here shows a score, an answer or an alert (the
clinical sections of the patient page are ``bot/web/staff.py``'s, for HEALTH_DATA roles).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice

from bot.errors import InputError, InvitationNotPending
from bot.schemas.errors import checked
from bot.schemas.patients import PatientCreate
from bot.schemas.scheduling import ConsultationCreate, InvitationMove
from bot.services import consultations, follow_ups, protocols
from bot.services.enrolment import check_new_patient, register_consultation, register_patient
from bot.web import context, staff
from bot.web.roles import ALL_STAFF, requires

bp = Blueprint("patient_pages", __name__, url_prefix="/staff")
staff.check_csrf(bp)
staff.staff_errors(bp)

LONGEST_DELAY_DAYS = 5 * 366
RECENT = timedelta(days=14)
"""How far back the follow-ups page looks until staff choose a date."""
STATE_LABELS = {
    "pending": "Waiting to send",
    "active": "Sent, in progress",
    "completed": "Finished",
    "incomplete": "Finished, not complete",
    "expired": "Expired",
    "cancelled": "Cancelled",
    "opted_out": "Stopped (patient opted out)",
    follow_ups.FAILED: "Text not delivered",
}
STATE_TAGS = {
    "pending": "grey",
    "active": "blue",
    "completed": "green",
    "incomplete": "yellow",
    "expired": "orange",
    "cancelled": "white",
    "opted_out": "orange",
}
PATIENT_LABELS = {
    "name": "Full name",
    "phone": "Mobile",
    "nhs_number": "NHS number",
    "date_of_birth": "Date of birth",
}
DUPLICATE = re.compile(r"already exists: ([0-9A-Za-z_-]+)$")


@bp.app_template_filter("follow_up_state")
def _state_label(state: str) -> str:
    return STATE_LABELS.get(state, state.replace("_", " ").capitalize())


@bp.app_template_filter("follow_up_tag")
def _state_tag(state: str) -> str:
    return STATE_TAGS.get(state, "grey")


def _actor() -> dict[str, Any]:
    return {"now": context.now(), "actor": f"user:{current_user.id}"}


def _zone() -> ZoneInfo:
    return ZoneInfo(current_user.timezone)


def _today() -> date:
    return context.now().astimezone(_zone()).date()


def _practice():
    return follow_ups.practice(context.runtime(), current_user.practice_id)


# -- forms ---------------------------------------------------------------------------------


def _day_of(day: str | None, month: str | None, year: str | None) -> str:
    """Three boxes as an ISO date for the schemas to check ("" when all are empty)."""
    parts = [(p or "").strip() for p in (day, month, year)]
    if not any(parts):
        return ""
    if not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        return "not a date"
    return f"{int(parts[2]):04d}-{int(parts[1]):02d}-{int(parts[0]):02d}"


class PatientForm(FlaskForm):
    name = StringField("Full name")
    phone = StringField("Mobile")
    nhs_number = StringField("NHS number (optional)")
    dob_day = StringField("Day")
    dob_month = StringField("Month")
    dob_year = StringField("Year")
    submit = SubmitField("Save")

    def fields(self) -> dict[str, str]:
        return {
            "name": self.name.data or "",
            "phone": self.phone.data or "",
            "nhs_number": (self.nhs_number.data or "").strip(),
            "date_of_birth": _day_of(self.dob_day.data, self.dob_month.data, self.dob_year.data),
        }


# A value each field accepts, put in place of a wrong one to find the problems after it.
_VALID = {"name": "x", "phone": "07700900000", "nhs_number": "", "date_of_birth": ""}
_FIELD_IDS = {"name": "name", "phone": "phone", "nhs_number": "nhs_number"}
_FIELD_OF = {"dob_day": "date_of_birth"}


def _problem(field: str, message: str) -> tuple[str, str]:
    """The schema's message ("phone must be ...") in the page's words, by the field's id."""
    label = PATIENT_LABELS.get(field, field)
    if field == "date_of_birth":
        if "future" in message:
            return "dob_day", "Date of birth must be today or in the past"
        return "dob_day", "Date of birth must be a real date, for example 21 4 1980"
    return _FIELD_IDS.get(field, field), label + message.removeprefix(field)


def _checked_patient(form: PatientForm) -> tuple[PatientCreate | None, list[tuple[str, str]]]:
    """The form as the API's ``PatientCreate``, or every field's problem (one each)."""
    data, problems = form.fields(), []
    for _ in range(len(_VALID) + 1):
        try:
            new = checked(PatientCreate, data)
        except InputError as exc:
            field = exc.field if exc.field in _VALID else "name"
            problems.append(_problem(field, exc.message))
            if data.get(field) == _VALID[field]:
                break  # should not happen: the placeholder itself was refused
            data[field] = _VALID[field]
            continue
        try:
            check_new_patient(new, today=_today())  # the API's rules beyond the fields'
        except InputError as exc:
            problems.append(_problem(exc.field, exc.message))
        problems.sort(key=lambda p: list(_VALID).index(_FIELD_OF.get(p[0], p[0])))
        return (None if problems else new), problems
    return None, problems


def _duplicate(exc: InputError) -> tuple[str, Markup] | None:
    """A "this mobile is already enrolled" problem naming the patient, with a link."""
    found = DUPLICATE.search(exc.message)
    if exc.field != "phone" or found is None:
        return None
    patient_id = found.group(1)
    name = follow_ups.patient_name(context.runtime(), current_user.practice_id, patient_id)
    link = url_for("staff.patient", patient_id=patient_id)
    who = escape(name or "another patient")
    return "phone", Markup(f'This mobile is already enrolled for <a href="{link}">{who}</a>')


def _service_problem(exc: InputError) -> tuple[str, str | Markup]:
    return _duplicate(exc) or _problem(exc.field, exc.message)


# -- enrol and edit ------------------------------------------------------------------------


@bp.route("/patients/new", methods=["GET", "POST"])
@requires(*ALL_STAFF)
def new_patient():
    form = PatientForm()
    problems: list[tuple[str, str | Markup]] = []
    if form.validate_on_submit():
        new, problems = _checked_patient(form)  # type: ignore[assignment]
        if new is not None:
            try:
                patient = register_patient(context.runtime(), _practice(), new, **_actor())
            except InputError as exc:
                problems = [_service_problem(exc)]
            else:
                flash(f"{patient.name} is enrolled.", "info")
                return redirect(url_for("staff.patient", patient_id=patient.id))
    status = 400 if problems else 200
    return render_template(
        "staff/patient_form.html", form=form, problems=problems, patient=None
    ), status


@bp.route("/patients/<patient_id>/edit", methods=["GET", "POST"])
@requires(*ALL_STAFF)
def edit_patient(patient_id: str):
    rt = context.runtime()
    overview = follow_ups.patient_overview(
        rt, current_user.practice_id, patient_id, rt.catalogue, now=context.now()
    )
    patient = overview.patient
    form = PatientForm()
    problems: list[tuple[str, str | Markup]] = []
    if request.method == "GET":
        form.name.data, form.phone.data = patient.name, patient.phone
        form.nhs_number.data = patient.nhs_number or ""
        if patient.date_of_birth:
            born = patient.date_of_birth
            form.dob_day.data, form.dob_month.data = str(born.day), str(born.month)
            form.dob_year.data = str(born.year)
    elif form.validate_on_submit():
        changed, problems = _checked_patient(form)  # type: ignore[assignment]
        if changed is not None:
            changed = changed.model_copy(update={"language": patient.language})
            try:
                follow_ups.update_patient(
                    rt, current_user.practice_id, patient.id, changed, **_actor()
                )
            except InputError as exc:
                problems = [_service_problem(exc)]
            else:
                flash("The patient's details are saved.", "info")
                return redirect(url_for("staff.patient", patient_id=patient.id))
    status = 400 if problems else 200
    return render_template(
        "staff/patient_form.html", form=form, problems=problems, patient=patient
    ), status


# -- schedule in one step ------------------------------------------------------------------

AD_HOC = ""


class ScheduleForm(FlaskForm):
    protocol = SelectField("What to send", choices=[], validate_choice=False)
    instrument = SelectField("Questionnaire", choices=[], validate_choice=False)
    after_days = StringField("Days after the consultation")
    day = StringField("Day")
    month = StringField("Month")
    year = StringField("Year")
    submit = SubmitField("Schedule follow-ups")


def schedule_form(practice=None) -> ScheduleForm:
    """The schedule form with the practice's protocols and the instruments, dated today."""
    rt = context.runtime()
    form = ScheduleForm(formdata=None) if request.method == "GET" else ScheduleForm()
    listed = protocols.list_protocols(rt, practice or _practice())
    form.protocol.choices = [SelectChoice(p.name, p.title) for p in listed] + [
        SelectChoice(AD_HOC, "One questionnaire (choose it below)")
    ]
    form.instrument.choices = [
        SelectChoice(i, rt.catalogue[i].title)
        for i in sorted(rt.catalogue)
        if rt.catalogue[i].languages
    ]
    if request.method == "GET":
        today = _today()
        form.day.data, form.month.data, form.year.data = (
            str(today.day),
            str(today.month),
            str(today.year),
        )
        form.after_days.data = "14"
    return form


def _schedule_problems(
    form: ScheduleForm, patient_id: str
) -> tuple[ConsultationCreate | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    on = _day_of(form.day.data, form.month.data, form.year.data)
    try:
        when = date.fromisoformat(on)
    except ValueError:
        problems.append(("day", "Consultation date must be a real date, for example 2 3 2026"))
        when = None
    body: dict[str, Any] = {"patient_id": patient_id}
    protocol = form.protocol.data or AD_HOC
    if protocol != AD_HOC:
        body["protocol"] = protocol
    else:
        typed = (form.after_days.data or "").strip()
        days = int(typed) if typed.isdigit() and len(typed) <= 5 else None
        if days is None or not 0 <= days <= LONGEST_DELAY_DAYS:
            problems.append(
                ("after_days", f"Enter the number of days, from 0 to {LONGEST_DELAY_DAYS}")
            )
        body["schedule"] = [{"instrument": form.instrument.data or "", "after": f"P{days or 0}D"}]
    if problems or when is None:
        return None, problems
    local_now = context.now().astimezone(_zone())
    body["occurred_at"] = datetime.combine(
        when, local_now.time().replace(microsecond=0)
    ).isoformat()
    try:
        return checked(ConsultationCreate, body), []
    except InputError as exc:
        return None, [(_schedule_field(exc.field), _schedule_message(exc))]


def _schedule_field(field: str) -> str:
    if field.startswith("schedule"):
        return "instrument"
    return {"occurred_at": "day", "protocol": "protocol"}.get(field, "protocol")


def _schedule_message(exc: InputError) -> str:
    if exc.field.startswith("schedule"):
        return "Choose a questionnaire to send"
    if exc.field == "protocol":
        return "Choose a protocol, or one questionnaire"
    if exc.field == "patient_id":
        return "This patient has opted out of texts: nothing can be scheduled"
    return exc.message


@bp.post("/patients/<patient_id>/schedule")
@requires(*ALL_STAFF)
def schedule(patient_id: str):
    rt, practice = context.runtime(), _practice()
    overview = follow_ups.patient_overview(
        rt, current_user.practice_id, patient_id, rt.catalogue, now=context.now()
    )
    form = schedule_form(practice)
    problems: list[tuple[str, str]] = []
    if form.validate_on_submit():
        new, problems = _schedule_problems(form, overview.patient.id)
        if new is not None:
            try:
                _, invitations = register_consultation(rt, practice, new, **_actor())
            except InputError as exc:
                problems = [(_schedule_field(exc.field), _schedule_message(exc))]
            else:
                n = len(invitations)
                flash(f"Scheduled {n} follow-up{'s' if n != 1 else ''}.", "info")
                return redirect(
                    url_for("staff.patient", patient_id=overview.patient.id) + "#follow-ups-title"
                )
    else:
        problems = [("protocol", "Choose a protocol, or one questionnaire")]
    return render_template(
        "staff/schedule.html", form=form, problems=problems, overview=overview
    ), 400


# -- per follow-up actions -----------------------------------------------------------------


class ActionForm(FlaskForm):
    submit = SubmitField("Go")


class RescheduleForm(FlaskForm):
    day = StringField("Day")
    month = StringField("Month")
    year = StringField("Year")
    submit = SubmitField("Reschedule")


def _back(patient_id: str):
    return redirect(url_for("staff.patient", patient_id=patient_id) + "#follow-ups-title")


def _not_pending(exc: InvitationNotPending) -> None:
    flash(
        f"That follow-up has already been sent or closed ({_state_label(exc.status).lower()}): "
        "nothing was changed.",
        "error",
    )


def _invitation(invitation_id: str):
    """The invitation (of this practice, or NotFound: a 404) and its patient's overview."""
    return follow_ups.invitation(context.runtime(), current_user.practice_id, invitation_id)


@bp.post("/followups/<invitation_id>/cancel")
@requires(*ALL_STAFF)
def cancel_follow_up(invitation_id: str):
    invitation = _invitation(invitation_id)
    try:
        consultations.cancel_invitation(context.runtime(), _practice(), invitation.id, **_actor())
    except InvitationNotPending as exc:
        _not_pending(exc)
    else:
        flash("The follow-up is cancelled: it will not be sent.", "info")
    return _back(invitation.patient_id)


@bp.post("/followups/<invitation_id>/send-now")
@requires(*ALL_STAFF)
def send_now(invitation_id: str):
    invitation = _invitation(invitation_id)
    now = context.now()
    try:
        consultations.move_invitation(
            context.runtime(), _practice(), invitation.id, due_at=now, **_actor()
        )
    except InvitationNotPending as exc:
        _not_pending(exc)
    else:
        flash("The follow-up goes now, or at the next opening of the send window.", "info")
    return _back(invitation.patient_id)


@bp.route("/followups/<invitation_id>/reschedule", methods=["GET", "POST"])
@requires(*ALL_STAFF)
def reschedule_follow_up(invitation_id: str):
    invitation = _invitation(invitation_id)
    zone = _zone()
    form = RescheduleForm()
    problems: list[tuple[str, str]] = []
    due_local = invitation.due_at.astimezone(zone)
    if request.method == "GET":
        form.day.data, form.month.data = str(due_local.day), str(due_local.month)
        form.year.data = str(due_local.year)
    elif form.validate_on_submit():
        try:
            when = date.fromisoformat(_day_of(form.day.data, form.month.data, form.year.data))
        except ValueError:
            problems = [("day", "New date must be a real date, for example 2 3 2026")]
        else:
            at = datetime.combine(when, due_local.time().replace(microsecond=0))
            if when == _today() and at.replace(tzinfo=zone) < context.now():
                at = context.now().astimezone(zone).replace(tzinfo=None, microsecond=0)
            try:
                move = checked(InvitationMove, {"due_at": at.isoformat()})
                consultations.move_invitation(
                    context.runtime(), _practice(), invitation.id, due_at=move.due_at, **_actor()
                )
            except InputError:
                problems = [("day", "New date must be today or later")]
            except InvitationNotPending as exc:
                _not_pending(exc)
                return _back(invitation.patient_id)
            else:
                flash("The follow-up is rescheduled.", "info")
                return _back(invitation.patient_id)
    status = 400 if problems or request.method == "POST" else 200
    return render_template(
        "staff/reschedule.html",
        form=form,
        problems=problems,
        invitation=invitation,
        title=follow_ups.title_of(context.runtime().catalogue, invitation.instrument),
    ), status


@bp.post("/consultations/<consultation_id>/cancel")
@requires(*ALL_STAFF)
def cancel_consultation(consultation_id: str):
    consultation, _, outcome = consultations.cancel_consultation(
        context.runtime(), _practice(), consultation_id, **_actor()
    )
    n, left = outcome.cancelled, outcome.left.get("active", 0)
    message = f"Cancelled {n} follow-up{'s' if n != 1 else ''} waiting to send."
    if left:
        message += f" {left} already sent {'is' if left == 1 else 'are'} left to finish or expire."
    flash(message, "info")
    return _back(consultation.patient_id)


# -- the practice's follow-ups -------------------------------------------------------------


class FollowUpFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET search: nothing changes

    state = SelectField(
        "State",
        choices=[SelectChoice("", "Any state")]
        + [SelectChoice(s, STATE_LABELS[s]) for s in (*follow_ups.STATES, follow_ups.FAILED)],
        validate_choice=False,
    )
    since = StringField("From (dd/mm/yyyy)")
    until = StringField("To (dd/mm/yyyy)")


def _typed_day(text: str | None) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(text)


@bp.get("/followups")
@requires(*ALL_STAFF)
def followups():
    rt = context.runtime()
    form = FollowUpFilter(request.args)
    if "since" not in request.args:  # first opened: recent sends and everything to come
        form.since.data = (_today() - RECENT).strftime("%d/%m/%Y")
    problems: list[tuple[str, str]] = []
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        try:
            days[name] = _typed_day(form[name].data)
        except ValueError:
            days[name] = None
            problems.append(
                (name, f"{form[name].label.text.split(' (')[0]} must be a date such as 02/03/2026")
            )
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    found = follow_ups.practice_follow_ups(
        rt,
        current_user.practice_id,
        rt.catalogue,
        now=context.now(),
        state=form.state.data or None,
        since=days["since"],
        until=days["until"],
        page=page,
    )
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "staff/followups.html", form=form, found=found, problems=problems, query=query
    ), (400 if problems else 200)
