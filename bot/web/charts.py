"""Server-rendered SVG bar charts: readable without JavaScript, safe under a strict CSP.

No ``style`` attributes and no script: colours are SVG presentation attributes
(``fill``), which a Content-Security-Policy without ``'unsafe-inline'`` allows.
Each chart is an ``img`` with a ``<title>`` and a ``<desc>`` that says every
value in words; the tables beside the charts hold the same figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

LABEL_WIDTH = 220
BAR_WIDTH = 320
VALUE_WIDTH = 90
ROW = 30
BAR = 20
TOP = 6
COLOURS = {"blue": "#005eb8", "green": "#007f3b", "grey": "#768692", "red": "#d5281b"}
_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    """None: nothing to show (drawn as an empty bar, said as "no figure")."""
    text: str
    """The value as the page says it, e.g. "50%" or "12"."""
    colour: str = "blue"


def bar_chart(title: str, bars: Sequence[Bar], *, maximum: float | None = None) -> Markup:
    """A horizontal bar chart; bars are scaled to ``maximum`` (default: the largest value)."""
    top = maximum if maximum is not None else max((b.value or 0 for b in bars), default=0)
    top = top or 1
    n = next(_ids)
    height = TOP * 2 + ROW * len(bars)
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    described = "; ".join(f"{b.label}: {b.text}" for b in bars) or "no figures"
    parts = [
        f'<svg class="report-chart" role="img" aria-labelledby="chart-{n}-title chart-{n}-desc"'
        f' viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{n}-title">{escape(title)}</title>',
        f'<desc id="chart-{n}-desc">{escape(described)}</desc>',
    ]
    for i, bar in enumerate(bars):
        y = TOP + i * ROW
        length = 0 if bar.value is None else round(BAR_WIDTH * min(bar.value / top, 1), 1)
        fill = COLOURS.get(bar.colour, COLOURS["blue"])
        parts += [
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR - 5}" text-anchor="end" font-size="14"'
            f' fill="#212b32">{escape(bar.label)}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{BAR_WIDTH}" height="{BAR}" fill="#f0f4f5"/>',
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR}"'
            f' fill="{fill}"/>',
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + BAR - 5}" font-size="14"'
            f' fill="#212b32">{escape(bar.text)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))
