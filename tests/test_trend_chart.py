"""The trend chart: well-formed SVG with the points, the bands and a text alternative.

It must work with no JavaScript and under the staff pages' CSP, so it carries
no script and no ``style`` attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bot.instruments import builtin_catalogue
from bot.web.trend_chart import TrendPoint, trend_svg

CATALOGUE = builtin_catalogue()
SVG = "{http://www.w3.org/2000/svg}"
POINTS = [TrendPoint("1 Oct", 18), TrendPoint("15 Oct", 14), TrendPoint("12 Nov", 9)]


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_the_chart_is_well_formed_svg_with_every_point_labelled():
    root = _parse(trend_svg(CATALOGUE["phq9"], POINTS, chart_id="trend-phq9"))
    assert root.tag == f"{SVG}svg"
    points = root.findall(f".//{SVG}g[@class='point']")
    assert [p.get("data-total") for p in points] == ["18", "14", "9"]
    labels = [p.find(f"{SVG}title").text for p in points]
    assert labels == ["Baseline: 1 Oct, total 18", "15 Oct, total 14", "12 Nov, total 9"]
    assert len(root.findall(f".//{SVG}rect[@class='baseline']")) == 1


def test_the_chart_shades_every_band_of_the_instrument():
    root = _parse(trend_svg(CATALOGUE["phq9"], POINTS, chart_id="t"))
    bands = [r.get("data-band") for r in root.findall(f".//{SVG}rect[@class='band']")]
    assert bands == ["none_minimal", "mild", "moderate", "moderately_severe", "severe"]
    band_text = "".join(root.itertext())
    assert "Moderately severe (15-19)" in band_text


def test_the_chart_has_a_title_and_description_naming_its_figures():
    root = _parse(trend_svg(CATALOGUE["phq9"], POINTS, chart_id="trend-phq9"))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "trend-phq9-title trend-phq9-desc"
    assert root.find(f"{SVG}title").text == "PHQ-9 totals over time"
    desc = root.find(f"{SVG}desc").text
    assert "Baseline 18 on 1 Oct; latest 9 on 12 Nov" in desc
    assert "lower is better" in desc
    assert "1 Oct: 18; 15 Oct: 14; 12 Nov: 9" in desc


def test_who5_says_higher_is_better():
    root = _parse(trend_svg(CATALOGUE["who5"], [TrendPoint("1 Oct", 10)], chart_id="w"))
    assert "higher is better" in root.find(f"{SVG}desc").text


@pytest.mark.parametrize("points", [[], POINTS[:1], POINTS], ids=["none", "one", "three"])
def test_the_chart_has_no_script_and_no_style_attribute(points):
    text = trend_svg(CATALOGUE["gad7"], points, chart_id="g")
    root = _parse(text)
    for element in root.iter():
        assert element.tag != f"{SVG}script"
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)


def test_text_in_labels_is_escaped():
    root = _parse(trend_svg(CATALOGUE["phq9"], [TrendPoint("<b>&", 3)], chart_id="x"))
    assert root.find(f".//{SVG}g[@class='point']/{SVG}title").text == "Baseline: <b>&, total 3"
