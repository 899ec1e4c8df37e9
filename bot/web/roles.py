"""Who may open which staff page: the one guard every staff route goes through.

Three roles (the issue's "Roles and what each may see"):

- ``admin`` (practice manager): everything, settings and staff included;
- ``clinician``: patients, follow-ups, results, answers and alerts;
- ``reception``: find, enrol and schedule patients and see follow-up states,
  but no scores, answers, transcripts or alert details (UK GDPR data
  minimisation: scheduling needs no health data).

Every view under ``/staff/`` says who may open it, with ``@requires(...)``
(signed-in staff of those roles) or ``@public`` (sign-in, sign-out). A view
that says neither is refused to everyone (deny by default, logged), so a new
page cannot leak by forgetting its guard; tests/service/test_staff_roles.py
walks ``app.url_map`` and fails for any staff route without a row in its table.

Signed out, a guarded page redirects to sign-in; signed in with another role,
it is 403. A request htmx makes (``HX-Request: true``: the inbox's rows and
the header's count poll by themselves) would swap a redirect's sign-in page
into the table, so a signed-out (or expired) one is answered 401 with an empty
body and ``HX-Redirect``: htmx swaps nothing and takes the whole page to
sign-in, to come back to the page the member was on.

Each practice sees only its own records: that is the services' job (another
practice's id is ``NotFound``, a 404), not this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from flask import Flask, Response, abort, current_app, flash, request, url_for
from flask_login import current_user

log = structlog.get_logger(__name__)

ADMIN, CLINICIAN, RECEPTION = "admin", "clinician", "reception"
ALL_STAFF = (ADMIN, CLINICIAN, RECEPTION)
HEALTH_DATA = (ADMIN, CLINICIAN)
"""Who may see scores, answers, transcripts and alert details."""
GUARDED_PREFIX = "/staff"

View = TypeVar("View", bound=Callable[..., Any])


def requires(*roles: str) -> Callable[[View], View]:
    """Only signed-in staff with one of ``roles``; the others get 403, the signed-out sign-in."""
    unknown = set(roles) - set(ALL_STAFF)
    if not roles or unknown:
        raise ValueError(f"requires() needs roles among {ALL_STAFF}, not {sorted(unknown)}")

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return signed_out()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        guarded.prombot_roles = frozenset(roles)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def signed_out() -> Any:
    """To sign-in: a redirect for a page, an ``HX-Redirect`` for a request htmx made."""
    login_manager = current_app.login_manager  # type: ignore[attr-defined]
    if request.headers.get("HX-Request") != "true":
        return login_manager.unauthorized()
    flash(login_manager.login_message, login_manager.login_message_category)
    response = Response(status=401)
    response.headers["HX-Redirect"] = url_for(login_manager.login_view, next=_page_shown())
    response.headers["Cache-Control"] = "no-store"
    return response


def _page_shown() -> str | None:
    """The staff page htmx is polling from (``HX-Current-URL``), to return to after sign-in;
    only a path of ours (sign-in checks it again: never another site)."""
    parts = urlsplit(request.headers.get("HX-Current-URL", ""))
    if parts.netloc not in ("", request.host) or not parts.path.startswith(GUARDED_PREFIX + "/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def public(view: View) -> View:
    """Open to anyone, signed in or not (sign-in and sign-out pages only)."""
    view.prombot_roles = None  # type: ignore[attr-defined]
    return view


def allowed(endpoint: str, role: str | None) -> bool:
    """Whether someone of ``role`` (None: signed out) may open ``endpoint``'s page."""
    view = current_app.view_functions.get(endpoint)
    if view is None or not hasattr(view, "prombot_roles"):
        return False
    roles = view.prombot_roles
    return roles is None or (role is not None and role in roles)


def init_app(app: Flask) -> None:
    """Deny by default: a staff route whose view declares no roles answers 403 to everyone."""

    @app.before_request
    def _deny_unguarded() -> None:
        rule = request.url_rule
        if rule is None or not rule.rule.startswith(GUARDED_PREFIX + "/"):
            return
        view = app.view_functions.get(request.endpoint or "")
        if view is not None and not hasattr(view, "prombot_roles"):
            log.error("roles.unguarded_view", endpoint=request.endpoint)
            abort(403)
