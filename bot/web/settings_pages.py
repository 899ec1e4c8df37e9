"""The practice's settings at /staff/settings (admins only): its settings, protocols and staff.

Thin views over the same services and the same pydantic models as the JSON API
(``PATCH /api/v1/practice``, ``/api/v1/protocols``, ``/api/v1/staff``), so there is
one set of rules: a form's values are put into the API's model, every problem it
finds is shown by its field and in an NHS.UK error summary, and the service
checks what needs the stored records (a send window that opens before it
closes, an e-mail address used once). Every change is audited by the service
with the admin as ``user:<id>``.

- ``/staff/settings``: the overview and the practice's settings form, and the
  practice's warnings (an urgent alert would reach nobody) as a warning callout.
- ``/staff/settings/protocols``: list, create, edit, remove; a schedule is entered
  as rows of questionnaire and weeks, days or months after the consultation (a
  fixed number of blank rows: no JavaScript needed).
- ``/staff/settings/staff``: list, add (with a one-time password shown once, which
  the member must change at first sign-in), edit role, on duty, escalation
  contact and mobile, deactivate (after a confirm page). A password reset is
  ``bot/web/passwords.py``'s page.

Clinicians and reception get 403; another practice's protocol or member is 404.
Every form carries a CSRF token (Flask-WTF).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from pydantic import BaseModel, ValidationError
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from bot.domain import DAY_NAMES, NATIONS
from bot.errors import InputError, NotFound
from bot.schemas.errors import input_errors
from bot.schemas.practice import PracticeSettingsUpdate
from bot.schemas.scheduling import MAX_STEPS, ProtocolCreate, ProtocolUpdate
from bot.schemas.staff import ROLES, StaffCreate, StaffUpdate
from bot.services import passwords, practice_settings, protocols, staff_admin
from bot.store.models import Practice
from bot.web import context, staff
from bot.web.roles import ADMIN, requires

bp = Blueprint("settings", __name__, url_prefix="/staff/settings")
staff.check_csrf(bp)
staff.staff_errors(bp)

DAY_LABELS = dict(
    zip(
        DAY_NAMES,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
NATION_LABELS = {
    "ENG": "England",
    "WLS": "Wales",
    "SCT": "Scotland",
    "NIR": "Northern Ireland",
    "NONE": "None (ignore bank holidays)",
}
assert set(NATION_LABELS) == set(NATIONS)
ROLE_LABELS = {"admin": "Admin", "clinician": "Clinician", "reception": "Reception"}
UNITS = {"W": "weeks", "D": "days", "M": "months"}
BLANK_ROWS = 3  # blank schedule rows below a protocol's steps
SAVED = "The practice's settings have been saved."
CONFIRM = "yes"
# Each form field's name, as the error messages start (the API's names are the models').
LABELS = {
    "send_window_start": "Send window start",
    "send_window_end": "Send window end",
    "working_days": "Working days",
    "nation": "Nation",
    "timezone": "Time zone",
    "reminder_after_hours": "Hours before a reminder",
    "max_reminders": "Reminders",
    "expire_after_days": "Days before a questionnaire expires",
    "invitation_valid_days": "Days a missed invitation is still sent",
    "escalate_after_minutes": "Minutes before escalation",
    "escalate_every_minutes": "Minutes between escalations",
    "contact_phone": "Contact phone",
    "contact_email": "Contact e-mail",
    "name": "Name",
    "title": "Title",
    "email": "E-mail address",
    "role": "Role",
    "mobile": "Mobile",
    "on_duty": "On duty",
    "escalation_contact": "Escalation contact",
}


def _choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PracticeForm(FlaskForm):
    send_window_start = StringField("Send window start")
    send_window_end = StringField("Send window end")
    working_days = MultiCheckboxField("Working days", choices=_choices(DAY_LABELS))
    nation = SelectField("Nation", choices=_choices(NATION_LABELS))
    timezone = StringField("Time zone")
    reminder_after_hours = StringField(LABELS["reminder_after_hours"])
    max_reminders = StringField(LABELS["max_reminders"])
    expire_after_days = StringField(LABELS["expire_after_days"])
    invitation_valid_days = StringField(LABELS["invitation_valid_days"])
    escalate_after_minutes = StringField(LABELS["escalate_after_minutes"])
    escalate_every_minutes = StringField(LABELS["escalate_every_minutes"])
    contact_phone = StringField("Contact phone (optional)")
    contact_email = StringField("Contact e-mail (optional)")
    submit = SubmitField("Save settings")


NUMBERS = (
    "reminder_after_hours",
    "max_reminders",
    "expire_after_days",
    "invitation_valid_days",
    "escalate_after_minutes",
    "escalate_every_minutes",
)


class ProtocolForm(FlaskForm):
    name = StringField("Name")
    title = StringField("Title")
    submit = SubmitField("Save protocol")


class StaffForm(FlaskForm):
    name = StringField("Full name")
    email = StringField("E-mail address")
    role = SelectField("Role", choices=_choices({r: ROLE_LABELS.get(r, r) for r in ROLES}))
    mobile = StringField("Mobile (optional)")
    on_duty = BooleanField("On duty: told of urgent alerts at once")
    escalation_contact = BooleanField(
        "Escalation contact: told of urgent alerts nobody has acknowledged in time"
    )
    submit = SubmitField("Save")


class ConfirmForm(FlaskForm):
    submit = SubmitField("Confirm")


# -- shared helpers ------------------------------------------------------------------------


def _practice() -> Practice:
    return practice_settings.practice_of(context.runtime(), current_user.practice_id)


def _actor() -> dict[str, Any]:
    return {"actor": f"user:{current_user.id}", "now": context.now()}


def _warnings(practice: Practice) -> list[dict[str, str]]:
    return practice_settings.alert_warnings(context.runtime(), practice)


def _worded(problem: InputError, labels: dict[str, str]) -> str:
    """The API's message in the form's words: its fields' labels instead of their names
    (at the start, and wherever a name with an underscore is mentioned)."""
    message = problem.message
    for name in sorted(labels, key=len, reverse=True):
        if message.startswith(name + " "):
            message = labels[name] + message[len(name) :]
        if "_" in name:
            message = re.sub(rf"(?<![\w\[.]){re.escape(name)}(?![\w\[])", labels[name], message)
    return message[:1].upper() + message[1:]


def _number(value: str | None) -> Any:
    """A form's whole number as the API's models take it (text stays text, to be refused)."""
    value = (value or "").strip()
    return int(value) if re.fullmatch(r"\d{1,9}", value) else value


def _checked(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, list[InputError]]:
    """``data`` as ``model`` (the API's), or every problem with it."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, input_errors(exc)


def _show(
    form: FlaskForm, problems: list[InputError], labels: dict[str, str], ids: dict[str, str]
) -> list[tuple[str, str]]:
    """Put each problem on its field; answers (field id, message) for the error summary."""
    summary = []
    first = next(f.id for f in form if f.type not in ("CSRFTokenField", "SubmitField"))
    for problem in problems:
        message = _worded(problem, labels)
        field_id = ids.get(problem.field)
        if field_id is not None and field_id in form:
            form[field_id].errors = [*form[field_id].errors, message]
            summary.append((form[field_id].id, message))
        else:
            summary.append((first, message))
    return summary


# -- the overview and the practice's settings ----------------------------------------------


@bp.route("", methods=["GET", "POST"])
@requires(ADMIN)
def index():
    rt = context.runtime()
    practice = practice_settings.read_practice(rt, _practice())
    form = PracticeForm() if request.method == "POST" else PracticeForm(formdata=None)
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        data: dict[str, Any] = {
            name: (form[name].data or "")
            for name in (
                "send_window_start",
                "send_window_end",
                "nation",
                "timezone",
                "contact_phone",
                "contact_email",
            )
        }
        data["timezone"] = data["timezone"].strip()
        data["working_days"] = list(form.working_days.data or [])
        data.update({name: _number(form[name].data) for name in NUMBERS})
        update, problems = _checked(PracticeSettingsUpdate, data)
        if update is not None:
            try:
                practice_settings.update_settings(rt, practice, update, **_actor())
            except InputError as exc:
                problems = [exc]
        if not problems:
            flash(SAVED, "info")
            return redirect(url_for("settings.index"))
        errors = _show(form, problems, LABELS, {name: name for name in LABELS})
        status = 400
    else:
        for field in form:
            if field.name in LABELS:
                field.data = getattr(practice, field.name)
        form.working_days.data = practice.working_days.split()
        for name in NUMBERS:
            form[name].data = str(getattr(practice, name))
    return render_template(
        "staff/settings/index.html",
        form=form,
        errors=errors,
        practice=practice,
        warnings=_warnings(practice),
        protocol_count=len(protocols.list_protocols(rt, practice)),
        staff_count=len(staff_admin.list_staff(rt, practice)),
    ), status


# -- protocols -----------------------------------------------------------------------------


def _protocol(practice: Practice, name: str):
    found = next(
        (p for p in protocols.list_protocols(context.runtime(), practice) if p.name == name), None
    )
    if found is None:
        raise NotFound(name)
    return found


def _rows_from_form(count: int) -> tuple[list[dict[str, Any]], list[dict[str, str]], list[int]]:
    """The schedule rows as posted, the steps they make and each step's row number."""
    rows, steps, where = [], [], []
    for index in range(count):
        instrument = (request.form.get(f"instrument-{index}") or "").strip()
        amount = (request.form.get(f"amount-{index}") or "").strip()
        unit = request.form.get(f"unit-{index}") or "W"
        rows.append({"instrument": instrument, "amount": amount, "unit": unit})
        if not instrument and not amount:
            continue
        after = f"P{int(amount)}{unit}" if amount.isdigit() and unit in UNITS else amount
        steps.append({"instrument": instrument, "after": after})
        where.append(index)
    return rows, steps, where


def _rows_of(schedule: list[dict[str, str]]) -> list[dict[str, Any]]:
    rows = []
    for step in schedule:
        match = re.fullmatch(r"P(\d+)([DWM])", step["after"])
        amount, unit = (match.group(1), match.group(2)) if match else (step["after"], "W")
        rows.append({"instrument": step["instrument"], "amount": amount, "unit": unit})
    return rows


def _padded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    blank = min(BLANK_ROWS, max(0, MAX_STEPS - len(rows)))
    return rows + [{"instrument": "", "amount": "", "unit": "W"} for _ in range(blank)]


def _schedule_problems(
    problems: list[InputError], rows: list[dict[str, Any]], where: list[int]
) -> tuple[list[tuple[str, str]], dict[int, dict[str, str]], list[InputError]]:
    """Problems with the schedule, by row: (summary, row errors, the other problems)."""
    summary: list[tuple[str, str]] = []
    by_row: dict[int, dict[str, str]] = {}
    others = []
    for problem in problems:
        match = re.match(r"schedule\[(\d+)\]\.(instrument|after)", problem.field)
        if match and int(match.group(1)) < len(where):
            row = where[int(match.group(1))]
            part = match.group(2)
            if part == "instrument":
                message = f"Row {row + 1}: choose a questionnaire"
            elif not rows[row]["amount"].isdigit():
                message = f"Row {row + 1}: enter how long after, as a number"
            else:
                tail = problem.message.split(" must ", 1)[-1]
                message = f"Row {row + 1}: the time after the consultation must {tail}"
            field_id = f"{'instrument' if part == 'instrument' else 'amount'}-{row}"
            by_row.setdefault(row, {})[part] = message
            summary.append((field_id, message))
        elif problem.field == "schedule":
            message = "Add at least one questionnaire to the schedule"
            if "at most" in problem.message:
                message = f"A schedule has at most {MAX_STEPS} questionnaires"
            by_row.setdefault(0, {}).setdefault("instrument", message)
            summary.append(("instrument-0", message))
        else:
            others.append(problem)
    return summary, by_row, others


def _protocol_page(form, rows, *, protocol=None, errors=(), row_errors=None, status=200):
    catalogue = context.runtime().catalogue
    return render_template(
        "staff/settings/protocol_form.html",
        form=form,
        protocol=protocol,
        rows=rows,
        row_errors=row_errors or {},
        errors=list(errors),
        instruments=[(i.id, i.short_title) for i in catalogue.values()],
        units=UNITS,
    ), status


@bp.get("/protocols")
@requires(ADMIN)
def protocols_list():
    rt = context.runtime()
    catalogue = rt.catalogue
    found = protocols.list_protocols(rt, _practice())
    titles = {i.id: i.short_title for i in catalogue.values()}
    return render_template(
        "staff/settings/protocols.html",
        protocols=[(p, _rows_of(_schedule(p))) for p in found],
        titles=titles,
        units=UNITS,
    )


def _schedule(protocol) -> list[dict[str, str]]:
    return json.loads(protocol.schedule_json)


def _save_protocol(practice: Practice, protocol=None):
    """Create (no ``protocol``) or change a protocol from the posted form."""
    form = ProtocolForm()
    posted = _number(request.form.get("rows"))
    count = min(posted if isinstance(posted, int) else BLANK_ROWS, MAX_STEPS + BLANK_ROWS)
    rows, steps, where = _rows_from_form(count)
    data: dict[str, Any] = {"title": form.title.data or "", "schedule": steps}
    if protocol is None:
        data["name"] = (form.name.data or "").strip()
        model = ProtocolCreate
    else:
        model = ProtocolUpdate
    checked, problems = _checked(model, data)
    if checked is not None:
        try:
            if protocol is None:
                protocols.add_protocol(context.runtime(), practice, checked, **_actor())
            else:
                protocols.change_protocol(
                    context.runtime(), practice, protocol.name, checked, **_actor()
                )
        except InputError as exc:
            problems = [exc]
    if not problems:
        name = data.get("name") or protocol.name
        flash(f"The protocol {name} has been saved.", "info")
        return redirect(url_for("settings.protocols_list"))
    summary, row_errors, others = _schedule_problems(problems, rows, where)
    labels = {"name": "Name", "title": "Title"}
    errors = _show(form, others, labels, {"name": "name", "title": "title"}) + summary
    return _protocol_page(
        form, _padded(rows), protocol=protocol, errors=errors, row_errors=row_errors, status=400
    )


@bp.route("/protocols/new", methods=["GET", "POST"])
@requires(ADMIN)
def protocol_new():
    if request.method == "POST":
        return _save_protocol(_practice())
    return _protocol_page(ProtocolForm(formdata=None), _padded([]))


@bp.route("/protocols/<protocol_name>", methods=["GET", "POST"])
@requires(ADMIN)
def protocol_edit(protocol_name: str):
    practice = _practice()
    protocol = _protocol(practice, protocol_name)
    if request.method == "POST":
        return _save_protocol(practice, protocol)
    form = ProtocolForm(formdata=None, data={"name": protocol.name, "title": protocol.title})
    return _protocol_page(form, _padded(_rows_of(_schedule(protocol))), protocol=protocol)


@bp.route("/protocols/<protocol_name>/remove", methods=["GET", "POST"])
@requires(ADMIN)
def protocol_remove(protocol_name: str):
    practice = _practice()
    protocol = _protocol(practice, protocol_name)

    def remove() -> None:
        protocols.remove_protocol(context.runtime(), practice, protocol.name, **_actor())
        flash(f"The protocol {protocol.name} has been removed.", "info")

    return _confirmed(remove, "settings.protocols_list", "protocol_remove", protocol=protocol)


def _confirmed(change, done: str, template: str, **shown: Any):
    """A confirm page (GET) and its POST, which makes ``change`` only with the page's "yes"
    (the CSRF token is checked before any view), then goes to ``done``."""
    if request.method == "POST" and request.form.get("confirm") == CONFIRM:
        change()
        return redirect(url_for(done))
    page = render_template(
        f"staff/settings/{template}.html", form=ConfirmForm(), confirm=CONFIRM, **shown
    )
    return page, 400 if request.method == "POST" else 200


# -- staff ---------------------------------------------------------------------------------


@bp.get("/staff")
@requires(ADMIN)
def staff_list():
    practice = _practice()
    return render_template(
        "staff/settings/staff.html",
        members=staff_admin.list_staff(context.runtime(), practice),
        warnings=_warnings(practice),
        role_labels=ROLE_LABELS,
    )


STAFF_IDS = {name: name for name in ("name", "email", "role", "mobile")} | {
    "on_duty": "on_duty",
    "escalation_contact": "escalation_contact",
}


@bp.route("/staff/new", methods=["GET", "POST"])
@requires(ADMIN)
def staff_new():
    practice = _practice()
    form = StaffForm() if request.method == "POST" else StaffForm(formdata=None)
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        data = {
            "name": form.name.data or "",
            "email": form.email.data or "",
            "role": form.role.data or "",
            "mobile": form.mobile.data or None,
            "on_duty": bool(form.on_duty.data),
            "escalation_contact": bool(form.escalation_contact.data),
        }
        new, problems = _checked(StaffCreate, data)
        if new is not None:
            try:
                member, password = passwords.add_member(
                    context.runtime(), practice, new, **_actor()
                )
            except InputError as exc:
                problems = [exc]
            else:
                return render_template(
                    "staff/settings/staff_added.html",
                    member=member,
                    password=password,
                    warnings=_warnings(practice),
                    role_labels=ROLE_LABELS,
                )
        errors = _show(form, problems, LABELS, STAFF_IDS)
        status = 400
    return render_template("staff/settings/staff_form.html", form=form, errors=errors), status


@bp.route("/staff/<staff_id>", methods=["GET", "POST"])
@requires(ADMIN)
def staff_edit(staff_id: str):
    practice = _practice()
    member = passwords.member(context.runtime(), practice.id, staff_id)
    errors: list[tuple[str, str]] = []
    status = 200
    if request.method == "POST":
        form = StaffForm()
        data = {
            "role": form.role.data or "",
            "mobile": form.mobile.data or None,
            "on_duty": bool(form.on_duty.data),
            "escalation_contact": bool(form.escalation_contact.data),
        }
        changes, problems = _checked(StaffUpdate, data)
        if changes is not None:
            try:
                staff_admin.change_staff(
                    context.runtime(), practice, member.id, changes, **_actor()
                )
            except InputError as exc:  # the practice's last admin
                problems = [exc]
            else:
                flash(f"{member.name}'s details have been saved.", "info")
                return redirect(url_for("settings.staff_list"))
        errors = _show(form, problems, LABELS, STAFF_IDS)
        status = 400
    else:
        form = StaffForm(
            formdata=None,
            data={
                "role": member.role,
                "mobile": member.mobile or "",
                "on_duty": member.on_duty,
                "escalation_contact": member.escalation_contact,
            },
        )
    return render_template(
        "staff/settings/staff_form.html", form=form, errors=errors, member=member
    ), status


@bp.route("/staff/<staff_id>/deactivate", methods=["GET", "POST"])
@requires(ADMIN)
def staff_deactivate(staff_id: str):
    practice = _practice()
    member = passwords.member(context.runtime(), practice.id, staff_id)
    if member.id == current_user.id:
        abort(403)  # an admin cannot lock themselves out; another admin can

    if request.method == "POST" and request.form.get("confirm") == CONFIRM:
        try:
            staff_admin.remove_staff(context.runtime(), practice, member.id, **_actor())
        except InputError as exc:  # the practice's last admin: say so on the page
            page = render_template(
                "staff/settings/staff_deactivate.html",
                form=ConfirmForm(),
                confirm=CONFIRM,
                member=member,
                errors=[(_worded(exc, {"staff_id": member.name}), "#deactivate")],
            )
            return page, 400
        flash(f"{member.name} can no longer sign in.", "info")
        return redirect(url_for("settings.staff_list"))
    return _confirmed(lambda: None, "settings.staff_list", "staff_deactivate", member=member)
