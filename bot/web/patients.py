"""The practice's patients at /staff/patients: find one by name, NHS number or the last
digits of their mobile, a page at a time.

Open to every member of staff (reception finds patients to enrol and schedule);
it shows who the patient is, never scores or answers. The link to a patient's
results is shown only to those whose role may open that page.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from bot.services import patient_search
from bot.web import context, staff
from bot.web.roles import ALL_STAFF, requires

bp = Blueprint("patients", __name__, url_prefix="/staff/patients")
staff.staff_errors(bp)
staff.check_csrf(bp)


@bp.get("")
@requires(*ALL_STAFF)
def patients():
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    found = patient_search.search(
        context.runtime(), current_user.practice_id, request.args.get("q", ""), page
    )
    return render_template("staff/patients.html", found=found)
