"""What the clinician's patient page and transcript show, shaped for the templates.

Thin: the record comes from ``bot/services/clinical_record.py``; here times go
into the practice's time zone and each instrument's trend becomes an SVG
chart (``bot/web/trend_chart.py``) with a table of the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup

from bot.instruments import Catalogue
from bot.services import clinical_record
from bot.services.clinical_record import ClinicalRecord, InstrumentTrend
from bot.services.runtime import Runtime
from bot.web.trend_chart import TrendPoint, trend_svg


@dataclass(frozen=True)
class TrendSection:
    trend: InstrumentTrend
    chart: Markup
    chart_id: str


def _short_day(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local.day} {local:%b %y}"


def sections(record: ClinicalRecord) -> list[TrendSection]:
    zone = ZoneInfo(record.practice.timezone)
    out = []
    for trend in record.trends:
        chart_id = f"trend-{trend.instrument.id}"
        points = [TrendPoint(_short_day(r.finished_at, zone), r.total) for r in trend.scored]
        svg = trend_svg(trend.instrument, points, chart_id=chart_id)
        out.append(TrendSection(trend, Markup(svg), chart_id))  # trend_svg escapes every text
    return out


def context(rt: Runtime, catalogue: Catalogue, practice_id: str, patient_id: str) -> dict:
    """The template variables of ``staff/patient.html``'s clinical sections."""
    record = clinical_record.clinical_record(rt, practice_id, patient_id, catalogue)
    return {"record": record, "sections": sections(record)}
