"""Staff passwords in the browser: one's own, an admin's reset, and "must change" first.

- ``/staff/password``: every member changes their own password (current one, the new
  one twice). The rules are ``bot.services.passwords``'s; each problem is shown by its
  field and in an error summary. Wrong current passwords count against the same limit
  as failed sign-ins (``STAFF_LOGIN_MAX_FAILURES`` within ``STAFF_LOGIN_WINDOW_SECONDS``),
  so a left-open session cannot be used to guess it. Afterwards this session carries
  on and every other session of the member ends (sessions carry a tag of the hash).
- ``/staff/settings/staff/<id>/password``: an admin gives a member of their own
  practice a new one-time password, shown once on the page that answers the POST
  (never cached). Clinicians and reception get 403; another practice's member is 404.
- A member whose password is a one-time password (onboarding, a reset) is sent to
  ``/staff/password`` from every staff page until they have chosen their own.

Pages work without JavaScript; every form carries a CSRF token (Flask-WTF).
"""

from __future__ import annotations

import hashlib

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SubmitField
from wtforms.validators import DataRequired, EqualTo

from bot.errors import InputError
from bot.services import passwords
from bot.web import context, staff
from bot.web.roles import ADMIN, ALL_STAFF, requires

bp = Blueprint("passwords", __name__, url_prefix="/staff")

# What a member who must change their password can still reach.
OPEN_WHILE_MUST_CHANGE = {"passwords.change", "staff.login", "staff.logout", "static"}
CHANGED = "Your password has been changed. You have been signed out everywhere else."
MUST_CHANGE = "Choose a new password before you go on: the one you signed in with was temporary."
TOO_MANY = "Too many wrong passwords. Wait a few minutes, then try again."

staff.check_csrf(bp)
staff.staff_errors(bp)


@bp.errorhandler(403)
def _forbidden(_exc: Exception):
    return render_template("staff/passwords/forbidden.html"), 403


@bp.before_app_request
def _must_change_first():
    """Every staff page sends a member with a one-time password to change it first."""
    endpoint = request.endpoint or ""
    if not request.path.startswith("/staff/") or endpoint in OPEN_WHILE_MUST_CHANGE:
        return None
    if endpoint.endswith(".static"):  # a blueprint's style sheets and images
        return None
    if current_user.is_authenticated and getattr(current_user, "must_change_password", False):
        return redirect(url_for("passwords.change"))
    return None


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password")]
    )
    new_password = PasswordField("New password", validators=[DataRequired("Enter a new password")])
    confirm_password = PasswordField(
        "New password again",
        validators=[
            DataRequired("Enter your new password again"),
            EqualTo("new_password", "The new passwords do not match: type the same one twice"),
        ],
    )
    submit = SubmitField("Change password")


class ResetPasswordForm(FlaskForm):
    submit = SubmitField("Reset password")


@bp.route("/password", methods=["GET", "POST"])
@requires(*ALL_STAFF)
def change():
    form = ChangePasswordForm()
    status = 200
    if request.method == "POST":
        settings = context.runtime().settings
        window = float(settings.staff_login_window_seconds)
        key = "password:" + hashlib.sha256(current_user.id.encode()).hexdigest()
        limiter = current_app.extensions["prombot.login_limiter"]
        if limiter.blocked({key: settings.staff_login_max_failures}, window):
            form.current_password.errors = [TOO_MANY]
            status = 429
        elif not form.validate_on_submit():
            status = 400
        else:
            try:
                changed = passwords.change_own_password(
                    context.runtime(),
                    current_user.id,
                    form.current_password.data or "",
                    form.new_password.data or "",
                    now=context.now(),
                )
            except InputError as exc:
                if exc.field == "current_password":
                    limiter.failed([key], window)
                getattr(form, exc.field).errors = [exc.message]
                status = 400
            else:
                limiter.clear(key)
                session.clear()  # a fresh session, carrying the new password's tag
                login_user(staff.StaffPrincipal(changed.user, changed.practice))
                flash(CHANGED, "info")
                return redirect(url_for("staff.index"))
    return render_template(
        "staff/passwords/change.html",
        form=form,
        errors=_errors(form),
        must_change=current_user.must_change_password,
        minimum=passwords.PASSWORD_MIN,
        maximum=passwords.PASSWORD_MAX,
    ), status


@bp.route("/settings/staff/<staff_id>/password", methods=["GET", "POST"])
@requires(ADMIN)
def reset(staff_id: str):
    if current_user.role != "admin":
        abort(403)
    rt = context.runtime()
    member = passwords.member(rt, current_user.practice_id, staff_id)
    if member.id == current_user.id:
        return redirect(url_for("passwords.change"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        member, one_time = passwords.reset_password(
            rt,
            current_user.practice_id,
            member.id,
            actor=f"user:{current_user.id}",
            now=context.now(),
        )
        return render_template("staff/passwords/reset_done.html", member=member, password=one_time)
    return render_template("staff/passwords/reset.html", member=member, form=form)


def _errors(form: FlaskForm) -> list[tuple[str, str]]:
    """(field id, message) for the error summary, in the form's order."""
    return [(field.id, error) for field in form if field.errors for error in field.errors]
