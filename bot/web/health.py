"""GET /healthz: 200 when the app and its database answer, 503 otherwise; JSON either way.

Besides ``status`` and ``database`` it carries ``unreached_urgent_alerts``:
how many open urgent alerts, across every practice, no person has been told
about yet (``bot.services.alert_reach``). That is for monitoring; it does not
change the status code, which is about the service being up. A new alert
counts until its first notice goes (within the alert job's interval, 10 s),
so alert on the number staying above zero, not on one reading. It names no
practice and no patient. ``null`` when the database cannot be asked.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy.exc import SQLAlchemyError

from bot.services import alert_reach
from bot.store.db import transaction
from bot.web import context

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        with transaction(context.runtime().engine, read_only=True) as session:
            unreached = alert_reach.unreached_count(session)
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="down", unreached_urgent_alerts=None), 503
    return jsonify(status="ok", database="up", unreached_urgent_alerts=unreached)
