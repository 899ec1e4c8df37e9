"""The practice's patients at /staff/patients: find one by name, NHS number or the last
digits of their mobile, a page at a time.

Open to every member of staff (reception finds patients to enrol and schedule);
it shows who the patient is, never scores or answers. The link to a patient's
results is shown only to those whose role may open that page.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, url_for
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
    return render_template("staff/patients.html", found=_found())


@bp.get("/results")
@requires(*ALL_STAFF)
def results():
    """The results region alone, for the live search (htmx) to swap in as the user types.

    Its address bar follows: ``HX-Replace-Url`` names the whole page for the same
    search, so reload, back and a shared link show what is on the screen.
    """
    found = _found()
    response = Response(render_template("staff/_patients_results.html", found=found))
    response.headers["HX-Replace-Url"] = url_for(
        "patients.patients", q=found.query or None, page=found.page if found.page > 1 else None
    )
    response.headers["Vary"] = "HX-Request"
    return response


def _found() -> patient_search.PatientPage:
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        page = 1
    return patient_search.search(
        context.runtime(), current_user.practice_id, request.args.get("q", ""), page
    )
