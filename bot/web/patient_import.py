"""The CSV import of patients, without JavaScript: upload, preview, confirm.

``GET /staff/import`` shows the upload form; ``POST /staff/import`` previews
every row's outcome; ``POST /staff/import/confirm`` imports exactly what was
previewed; ``POST /staff/import/failures.csv`` downloads the rows that failed,
with reasons. Admins, clinicians and receptionists may import (reception
enrols and schedules); each sees and changes only their own practice.

Nothing is stored between the steps. The preview page carries the file itself
in a hidden field, compressed and signed with the app's secret (an HMAC bound
to the practice, the member of staff and the previewed outcome, and valid for
a clinic day), so the confirm step imports the same bytes that were
previewed, and a changed or forged file is refused. The confirm step plans
again against the practice's records: if the outcome differs from the preview
(someone enrolled a patient in between), nothing is imported and the new
preview is shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib

from flask import Blueprint, Response, abort, render_template
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import HiddenField, SubmitField

from bot.services import patient_import, practice_settings
from bot.services.patient_import import ImportRefused, PlanChanged, Preview
from bot.web import context, staff
from bot.web.roles import ALL_STAFF, requires

bp = Blueprint("patient_import", __name__, url_prefix="/staff")
ROLES = frozenset({"admin", "clinician", "reception"})
TOKEN_MAX_AGE = 8 * 60 * 60  # a clinic day, like the CSRF token
SALT = "prombot.patient-import"
ROOM = 4_096  # the rest of the form around the carried file
EXPIRED = "This preview has expired or was changed. Upload the file again."
STATUS_TAGS = {
    "enrol": ("Will enrol", "nhsuk-tag--green"),
    "enrol_schedule": ("Will enrol and schedule", "nhsuk-tag--green"),
    "schedule": ("Will schedule", "nhsuk-tag--blue"),
    "duplicate": ("Already done", "nhsuk-tag--grey"),
    "error": ("Error", "nhsuk-tag--red"),
}
DONE_TAGS = {
    "enrol": ("Enrolled", "nhsuk-tag--green"),
    "enrol_schedule": ("Enrolled and scheduled", "nhsuk-tag--green"),
    "schedule": ("Scheduled", "nhsuk-tag--blue"),
    "duplicate": ("Already done", "nhsuk-tag--grey"),
    "error": ("Not imported", "nhsuk-tag--red"),
}


class UploadForm(FlaskForm):
    file = FileField("CSV file")
    submit = SubmitField("Preview import")


class CarriedForm(FlaskForm):
    """The confirm and failures forms: the previewed file, signed."""

    token = HiddenField()
    submit = SubmitField("Import")


staff.check_csrf(bp)
staff.staff_errors(bp)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge):
    if not current_user.is_authenticated:
        return render_template("staff/error.html", title="Too large", reason=None), 413
    limit = patient_import.max_bytes(context.runtime())
    problem = (
        f"The file is too large: the largest that can be imported is "
        f"{patient_import.size_text(limit)}. Split it into smaller files."
    )
    return _upload_page(problem, 413)


def _allowed() -> None:
    if current_user.role not in ROLES:
        abort(403)


def _practice():
    return practice_settings.practice_of(context.runtime(), current_user.practice_id)


def _upload_page(problem: str | None = None, status: int = 200):
    rt = context.runtime()
    return (
        render_template(
            "staff/import/upload.html",
            form=UploadForm(formdata=None),
            problem=problem,
            limit=patient_import.size_text(patient_import.max_bytes(rt)),
            max_rows=patient_import.MAX_ROWS,
            headings=patient_import.ACCEPTED_HEADINGS,
        ),
        status,
    )


# -- carrying the file between the steps ---------------------------------------------------


def _signer() -> TimestampSigner:
    secret = context.runtime().settings.secret_key or ""
    return TimestampSigner(secret, salt=SALT, digest_method=hashlib.sha256)


def _bound(digest: str) -> str:
    return f"{current_user.practice_id}.{current_user.id}.{digest}"


def carry(data: bytes, digest: str) -> str:
    """The file as a signed hidden-field value, for this practice, user and outcome."""
    packed = base64.urlsafe_b64encode(zlib.compress(data, 6)).decode("ascii")
    return _signer().sign(f"{_bound(digest)}.{packed}").decode("ascii")


def carried(token: str) -> tuple[bytes, str]:
    """The file and the previewed outcome a token carries, or ``ImportRefused``."""
    try:
        value = _signer().unsign(token, max_age=TOKEN_MAX_AGE).decode("ascii")
    except (BadSignature, SignatureExpired, UnicodeError):
        raise ImportRefused(EXPIRED) from None
    practice_id, user_id, digest, packed = [*value.split(".", 3), "", "", ""][:4]
    if (practice_id, user_id) != (current_user.practice_id, current_user.id):
        raise ImportRefused(EXPIRED)
    limit = patient_import.max_bytes(context.runtime())
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.urlsafe_b64decode(packed), limit + 1)
    except (binascii.Error, zlib.error, ValueError):
        raise ImportRefused(EXPIRED) from None
    return data, digest


def _preview_page(result: Preview, data: bytes, *, changed: bool = False, status: int = 200):
    token = carry(data, result.digest)
    if len(token) > context.runtime().settings.prombot_max_request_bytes - ROOM:
        return _upload_page(
            "This file is too large to import in one go. Split it into smaller files.", 413
        )
    form = CarriedForm(token=token)
    return (
        render_template(
            "staff/import/preview.html",
            preview=result,
            form=form,
            tags=STATUS_TAGS,
            changed=changed,
        ),
        status,
    )


# -- the pages -----------------------------------------------------------------------------


@bp.get("/import")
@requires(*ALL_STAFF)
def upload():
    _allowed()
    return _upload_page()


@bp.post("/import")
@requires(*ALL_STAFF)
def preview():
    _allowed()
    form = UploadForm()
    upload = form.file.data
    if not form.validate_on_submit() or upload is None or not getattr(upload, "filename", ""):
        return _upload_page("Choose a CSV file to upload.", 400)
    limit = patient_import.max_bytes(context.runtime())
    data = upload.read(limit + 1)
    try:
        result = patient_import.preview(context.runtime(), _practice(), data, now=context.now())
    except ImportRefused as exc:
        return _upload_page(str(exc), 422)
    return _preview_page(result, data)


@bp.post("/import/confirm")
@requires(*ALL_STAFF)
def confirm():
    _allowed()
    form = CarriedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        data, digest = carried(form.token.data or "")
        applied = patient_import.apply(
            context.runtime(),
            _practice(),
            data,
            f"user:{current_user.id}",
            now=context.now(),
            expected=digest,
        )
    except ImportRefused as exc:
        return _upload_page(str(exc), 422)
    except PlanChanged as exc:
        return _preview_page(exc.preview, data, changed=True, status=409)
    return render_template(
        "staff/import/result.html",
        applied=applied,
        preview=applied.preview,
        form=CarriedForm(token=carry(data, applied.preview.digest)),
        tags=DONE_TAGS,
    )


@bp.post("/import/failures.csv")
@requires(*ALL_STAFF)
def failures():
    _allowed()
    form = CarriedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        data, _digest = carried(form.token.data or "")
        result = patient_import.preview(context.runtime(), _practice(), data, now=context.now())
    except ImportRefused as exc:
        return _upload_page(str(exc), 422)
    stamp = context.now().strftime("%Y%m%d-%H%M")
    return Response(
        patient_import.failures_csv(result),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-failures-{stamp}.csv"'},
    )
