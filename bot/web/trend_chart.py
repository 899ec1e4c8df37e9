"""A trend chart of one instrument's totals, drawn on the server as SVG.

Pure: figures in, SVG text out. Readable without JavaScript and safe under the
staff pages' Content-Security-Policy (no script, no ``style`` attributes: only
SVG presentation attributes such as ``fill``). The chart carries its own text
alternative (``<title>`` and ``<desc>`` named by ``aria-labelledby``); the
page shows the same figures in a table beside it.

Points are spaced evenly in the order the results came in, each labelled with
its date and total; the first is the baseline (a square marker). Bands are
shaded from the instrument's file, worse bands darker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from bot.instruments.schema import Instrument

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 180, 16, 48
# NHS.UK palette: pale to darker greys-blues; the line is NHS blue
BAND_FILLS = ("#f0f4f5", "#e8edee", "#d8dde0", "#c5cdd2", "#aeb7bd", "#9aa5ab")
LINE = "#005eb8"
TEXT = "#212b32"


@dataclass(frozen=True)
class TrendPoint:
    when: str
    """The result's date, already in the practice's time zone ("2 Dec 2026")."""
    total: int


def _shade(index: int, count: int, worse_high: bool) -> str:
    rank = index if worse_high else count - 1 - index
    return BAND_FILLS[min(rank, len(BAND_FILLS) - 1)]


def trend_svg(
    instrument: Instrument,
    points: Sequence[TrendPoint],
    *,
    chart_id: str,
    higher_is_better: bool | None = None,
) -> str:
    """The SVG of ``points`` (oldest first) against the instrument's bands."""
    if higher_is_better is None:
        higher_is_better = bool(instrument.change and instrument.change.higher_is_better)
    low, high = instrument.total_range
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = high - low or 1

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (high - value) / span, 1)

    def x_of(index: int) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return round(LEFT + plot_w * index / (len(points) - 1), 1)

    title = f"{instrument.short_title} totals over time"
    if points:
        figures = "; ".join(f"{p.when}: {p.total}" for p in points)
        first, last = points[0], points[-1]
        desc = (
            f"{len(points)} scored result{'s' if len(points) != 1 else ''} on a scale of "
            f"{low} to {high} ({'higher' if higher_is_better else 'lower'} is better). "
            f"Baseline {first.total} on {first.when}; latest {last.total} on {last.when}. "
            f"{figures}."
        )
    else:
        desc = f"No scored {instrument.short_title} results yet."
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id={quoteattr(chart_id)} '
        f'class="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="{title_id} {desc_id}" '
        f'font-family="Frutiger W01, Arial, sans-serif" font-size="12" fill="{TEXT}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(desc)}</desc>',
    ]
    bands = sorted(instrument.bands, key=lambda b: b.min)
    out.append('<g class="bands">')
    for index, band in enumerate(bands):
        top, bottom = y_of(min(band.max + 0.5, high)), y_of(max(band.min - 0.5, low))
        out.append(
            f'<rect class="band" data-band={quoteattr(band.id)} x="{LEFT}" y="{top}" '
            f'width="{plot_w}" height="{round(bottom - top, 1)}" '
            f'fill="{_shade(index, len(bands), not higher_is_better)}"/>'
        )
        out.append(
            f'<text x="{LEFT + plot_w + 6}" y="{round((top + bottom) / 2 + 4, 1)}">'
            f"{escape(band.label)} ({band.min}-{band.max})</text>"
        )
    out.append("</g>")
    out.append(f'<g class="axis" stroke="{TEXT}" stroke-width="1">')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}"/>')
    out.append("</g>")
    for tick in sorted({low, high, *(b.min for b in bands)}):
        out.append(f'<text x="{LEFT - 6}" y="{y_of(tick) + 4}" text-anchor="end">{tick}</text>')
    if len(points) > 1:
        path = " ".join(f"{x_of(i)},{y_of(p.total)}" for i, p in enumerate(points))
        out.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    for index, point in enumerate(points):
        x, y = x_of(index), y_of(point.total)
        label = f"{'Baseline: ' if index == 0 else ''}{point.when}, total {point.total}"
        out.append(f'<g class="point" data-total="{point.total}">')
        out.append(f"<title>{escape(label)}</title>")
        if index == 0:
            out.append(
                f'<rect class="baseline" x="{x - 5}" y="{y - 5}" width="10" height="10" '
                f'fill="{TEXT}"/>'
            )
        else:
            out.append(f'<circle cx="{x}" cy="{y}" r="5" fill="{LINE}"/>')
        out.append(
            f'<text x="{x}" y="{max(y - 9, 11)}" text-anchor="middle" font-weight="bold">'
            f"{point.total}</text>"
        )
        day = escape(point.when)
        out.append(f'<text x="{x}" y="{TOP + plot_h + 16}" text-anchor="middle">{day}</text>')
        if index == 0:
            out.append(
                f'<text x="{x}" y="{TOP + plot_h + 32}" text-anchor="middle">Baseline</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
