"""The practice outcomes report: ``/staff/reports`` (page) and ``/staff/reports.csv``.

Clinicians and admins only (reception: 403). The filter is a GET form (``from``
and ``to`` as ISO dates, inclusive, in the practice's time zone; ``protocol``
optional), so a report is a link and works without JavaScript. Bad input shows
an error summary on the page (400); the CSV answers 400 in plain text. The
figures come from ``bot.services.outcome_report``; nothing here or in the CSV
names a patient.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from bot.services import outcome_report as service
from bot.web import context, staff
from bot.web.charts import Bar, bar_chart
from bot.web.roles import HEALTH_DATA, requires

bp = Blueprint("reports", __name__, url_prefix="/staff")

DEFAULT_DAYS = 90
EARLIEST = date(2000, 1, 1)
LONGEST = timedelta(days=366 * 10)
SEVERITY_LABELS = {
    "urgent": "Urgent",
    "routine": "Routine",
    "information": "Information",
    "all": "All alerts",
}
INSTRUMENT_LABELS = {"phq9": "PHQ-9", "gad7": "GAD-7", "who5": "WHO-5"}


staff.staff_errors(bp)


# -- the filter ----------------------------------------------------------------------------


@dataclass
class Filter:
    start: date
    end: date
    protocol: str | None
    raw: dict[str, str]
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(field id, message) for the error summary."""


def _today() -> date:
    return context.now().astimezone(ZoneInfo(current_user.timezone)).date()


def _read_filter(choices: list[tuple[str, str]]) -> Filter:
    today = _today()
    raw = {k: (request.args.get(k) or "").strip() for k in ("from", "to", "protocol")}
    errors: list[tuple[str, str]] = []

    def parse(name: str, label: str, default: date) -> date:
        if not raw[name]:
            return default
        try:
            value = date.fromisoformat(raw[name])
        except ValueError:
            errors.append((name, f"{label} must be a real date, like 2026-01-31"))
            return default
        if not EARLIEST <= value <= today + timedelta(days=366):
            errors.append((name, f"{label} must be between 2000 and next year"))
            return default
        return value

    end = parse("to", "The end date", today)
    start = parse("from", "The start date", end - timedelta(days=DEFAULT_DAYS - 1))
    if not errors and start > end:
        errors.append(("from", "The start date must be the same as or before the end date"))
    if not errors and end - start > LONGEST:
        errors.append(("from", "The period can be at most 10 years"))
    protocol = raw["protocol"] or None
    if protocol is not None and protocol not in {name for name, _ in choices}:
        errors.append(("protocol", "Choose a protocol from the list"))
        protocol = None
    return Filter(start, end, protocol, raw, errors)


# -- the page ------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "no figure" if value is None else f"{round(value * 100)}%"


def minutes(value: float | None) -> str:
    if value is None:
        return "no figure"
    whole = round(value)
    if whole < 60:
        return f"{whole} min"
    hours, mins = divmod(whole, 60)
    if hours < 48:
        return f"{hours} h {mins} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _charts(report: service.OutcomeReport) -> dict[str, object]:
    r = report.reach
    reach = bar_chart(
        "Invitations due in the period, by what became of them",
        [
            Bar("Due", r.due, str(r.due), "grey"),
            Bar("Sent", r.sent, str(r.sent)),
            Bar("Answered", r.answered, str(r.answered)),
            Bar("Completed", r.completed, str(r.completed), "green"),
            Bar("Expired", r.expired, str(r.expired), "grey"),
            Bar("Opted out", r.opted_out, str(r.opted_out), "grey"),
        ],
    )
    safety = bar_chart(
        "Alerts raised in the period, by severity",
        [
            Bar(SEVERITY_LABELS.get(s.severity, s.severity), s.raised, str(s.raised), colour)
            for s, colour in zip(report.safety, ("red", "blue", "grey"), strict=False)
            if s.severity != "all"
        ],
    )
    outcomes = {}
    for instrument in dict.fromkeys(o.instrument for o in report.outcomes):
        bars = []
        for o in (o for o in report.outcomes if o.instrument == instrument):
            for name, words, colour in (
                ("improved", "improved", "green"),
                ("no_change", "no change", "grey"),
                ("deteriorated", "deteriorated", "red"),
            ):
                bars.append(
                    Bar(f"{o.window}: {words}", o.rate(name), percent(o.rate(name)), colour)
                )
        label = INSTRUMENT_LABELS.get(instrument, instrument)
        outcomes[instrument] = bar_chart(
            f"{label}: share of patients with a follow-up score, by reliable change",
            bars,
            maximum=1,
        )
    return {"reach": reach, "safety": safety, "outcomes": outcomes}


@bp.get("/reports")
@requires(*HEALTH_DATA)
def report_page():
    rt = context.runtime()
    choices = service.protocol_choices(rt, current_user.practice_id)
    chosen = _read_filter(choices)
    if chosen.errors:
        return render_template(
            "staff/reports/index.html", filter=chosen, choices=choices, report=None
        ), 400
    report = service.outcome_report(
        rt,
        current_user.practice_id,
        start=chosen.start,
        end=chosen.end,
        protocol=chosen.protocol,
    )
    return render_template(
        "staff/reports/index.html",
        filter=chosen,
        choices=choices,
        report=report,
        charts=_charts(report),
        percent=percent,
        minutes=minutes,
        severity_labels=SEVERITY_LABELS,
        instrument_labels=INSTRUMENT_LABELS,
        windows=service.WINDOWS,
        csv_args={
            "from": chosen.start.isoformat(),
            "to": chosen.end.isoformat(),
            **({"protocol": chosen.protocol} if chosen.protocol else {}),
        },
    )


def _cell(value: object) -> object:
    """A CSV cell: numbers as they are, no figure as empty, text never read as a formula."""
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/reports.csv")
@requires(*HEALTH_DATA)
def report_csv():
    rt = context.runtime()
    chosen = _read_filter(service.protocol_choices(rt, current_user.practice_id))
    if chosen.errors:
        message = "\n".join(m for _f, m in chosen.errors) + "\n"
        return Response(message, status=400, mimetype="text/plain")
    report = service.outcome_report(
        rt,
        current_user.practice_id,
        start=chosen.start,
        end=chosen.end,
        protocol=chosen.protocol,
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "group", "measure", "value"])
    writer.writerow(["period", "all", "from", chosen.start.isoformat()])
    writer.writerow(["period", "all", "to", chosen.end.isoformat()])
    writer.writerow(["period", "all", "protocol", _cell(chosen.protocol or "all")])
    for row in report.figures():
        writer.writerow([_cell(v) for v in row])
    name = f"outcomes-{chosen.start.isoformat()}-to-{chosen.end.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
