"""Why an alert was raised, in words: every kind of alert, as exact sentences.

Marked words (the risk phrase a patient texted) are shown between [ and ] here;
the page wraps them in <mark>.
"""

from __future__ import annotations

import pytest

from bot.flows.alert_why import alert_why
from bot.flows.risk import risk_spans
from bot.instruments import builtin_catalogue

CATALOGUE = builtin_catalogue()
PHQ9, GAD7 = CATALOGUE["phq9"], CATALOGUE["gad7"]
Q9 = "PHQ-9 Q9 (Thoughts that you would be better off dead or of hurting...)"

CASES = [
    (
        "item 9 answered with a number",
        dict(
            flag="self_harm_risk", reason="item_answer", instrument=PHQ9, item="self_harm", value=2
        ),
        f"{Q9} answered 'More than half the days' (2)",
    ),
    (
        "item 9 answered 'several days'",
        dict(
            flag="self_harm_risk", reason="item_answer", instrument=PHQ9, item="self_harm", value=1
        ),
        f"{Q9} answered 'Several days' (1)",
    ),
    (
        "a risk phrase, the matched words marked, the patient's capitals kept",
        dict(
            flag="self_harm_risk",
            reason="risk_phrase",
            patient_words="Some days I want to END it all!",
        ),
        "Texted: \u201cSome days I want to [END it all]!\u201d",
    ),
    (
        "two risk phrases in one text",
        dict(
            flag="self_harm_risk",
            reason="risk_phrase",
            patient_words="I'm suicidal, thinking of an overdose",
        ),
        "Texted: \u201cI'm [suicidal], thinking of an [overdose]\u201d",
    ),
    (
        "a curly apostrophe and spaces inside the phrase",
        dict(
            flag="self_harm_risk", reason="risk_phrase", patient_words="I don\u2019t  want to live"
        ),
        "Texted: \u201cI [don\u2019t  want to live]\u201d",
    ),
    (
        "a severe total with the previous one",
        dict(
            flag="severe_score",
            reason="score",
            instrument=PHQ9,
            total=21,
            band="severe",
            previous_total=12,
        ),
        "PHQ-9 total 21, severe (previous 12)",
    ),
    (
        "a severe total with no previous result",
        dict(flag="severe_score", reason="score", instrument=GAD7, total=18, band="severe"),
        "GAD-7 total 18, severe (no previous)",
    ),
    (
        "an unclear reply at item 9, its risk words marked",
        dict(
            flag="self_harm_risk",
            reason="unclear_answer",
            instrument=PHQ9,
            item="self_harm",
            patient_words="sometimes I self harm",
        ),
        f"{Q9} answered \u201csometimes I [self harm]\u201d, not a clear answer",
    ),
    (
        "item 9 never answered",
        dict(flag="self_harm_risk", reason="left_unanswered", instrument=PHQ9, item="self_harm"),
        "PHQ-9 Q9 left unanswered when the questionnaire expired",
    ),
    (
        "a call back asked for",
        dict(flag="callback_requested", reason="patient_request"),
        "The patient asked for a call back",
    ),
    (
        "an instrument this version does not know: the flag's name",
        dict(flag="severe_score", reason="score", instrument=None, total=20),
        "Severe score",
    ),
]


@pytest.mark.parametrize(("case", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_an_alert_says_why_in_words(case, given, expected):
    assert alert_why(**given).marked("[", "]") == expected


def test_the_plain_text_has_no_marks():
    why = alert_why(flag="self_harm_risk", reason="risk_phrase", patient_words="want to die")
    assert why.text == "Texted: \u201cwant to die\u201d"


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        ("nothing to see", []),
        ("I want to die", [(2, 13)]),
        ("SKILL myself", []),
        ("Better-off dead", []),
        ("better off dead.", [(0, 15)]),
    ],
)
def test_risk_spans_cover_the_patients_own_characters(text, spans):
    assert risk_spans(text) == spans
