"""Golden conversation transcripts: each file in tests/conversations/ is one conversation.

A transcript is a specification a person can read: what the patient texts, what
the bot must answer, word for word, and the result at the end. The runner plays
it against the engine the way the shell would (modelled on nyaruka/goflow's
flow tests):

- the clock is fixed: ``start`` at ``T0`` and step *n* at ``T0 + n minutes``;
- the state goes through ``to_json`` / ``from_json`` before every step, so
  nothing may live outside it;
- each step's reply texts must equal ``bot`` exactly, in order;
- ``events`` (optional) must appear in that step's events, in order, as a
  subsequence: an entry is an event ``type``, or a mapping of fields that one
  event must have, e.g. ``{type: flag_raised, flag: self_harm_risk}`` (nested
  mappings too: ``{type: result_recorded, result: {band: positive}}``);
- every reply is plain GSM-7 and fits in two SMS segments;
- ``result`` is compared with ``bot.flows.outcome`` at the end, on the keys
  given only (``flags`` in any order).

``UPDATE_GOLDEN=1 pytest tests/test_conversations.py`` rewrites the ``opening``
and ``bot`` texts from what the engine now says, in place, leaving everything
else (comments included) as it is; the results are never rewritten. Read the
diff before committing it: a rewritten golden is a changed specification.
"""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.flows import (
    Context,
    ConversationState,
    Event,
    ExpiryDue,
    PatientText,
    ReminderDue,
    outcome,
    resume,
    start,
)
from bot.flows.events import Reply
from bot.instruments import builtin_catalogue
from bot.instruments.gsm7 import is_gsm7

HERE = Path(__file__).parent / "conversations"
FILES = sorted(HERE.glob("*.yaml"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
MAX_SMS_CHARACTERS = 306  # two GSM-7 segments
FOLD_WIDTH = 92  # where UPDATE_GOLDEN folds a long one-line text

TOP_KEYS = {"description", "instrument", "context", "opening", "steps", "result"}
REQUIRED_TOP_KEYS = {"description", "instrument", "context", "opening", "steps"}
STEP_KEYS = {"patient", "timer", "bot", "events"}
TIMERS = {"reminder": ReminderDue, "expiry": ExpiryDue}
RESULT_KEYS = {
    "instrument",
    "status",
    "total",
    "band",
    "percentage",
    "prorated",
    "answers",
    "flags",
}


# -- reading and checking a transcript -------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    keys = set(data)
    assert keys <= TOP_KEYS, f"{path.name}: unknown keys {sorted(keys - TOP_KEYS)}"
    assert keys >= REQUIRED_TOP_KEYS, f"{path.name}: missing {sorted(REQUIRED_TOP_KEYS - keys)}"
    assert isinstance(data["description"], str) and data["description"].strip()
    assert "\n" not in data["description"].strip(), f"{path.name}: description is one line"
    assert isinstance(data["context"], dict), f"{path.name}: context is a mapping"
    _check_texts(path, "opening", data["opening"])
    assert isinstance(data["steps"], list) and data["steps"], f"{path.name}: no steps"
    for n, step in enumerate(data["steps"], start=1):
        where = f"{path.name} step {n}"
        assert isinstance(step, dict), f"{where}: not a mapping"
        assert set(step) <= STEP_KEYS, f"{where}: unknown keys {sorted(set(step) - STEP_KEYS)}"
        assert ("patient" in step) != ("timer" in step), f"{where}: one of patient or timer"
        if "patient" in step:
            assert isinstance(step["patient"], str), f"{where}: patient text must be a string"
        else:
            assert step["timer"] in TIMERS, f"{where}: timer is one of {sorted(TIMERS)}"
        assert "bot" in step, f"{where}: bot is required (use [] for silence)"
        _check_texts(path, f"step {n} bot", step["bot"])
        assert isinstance(step.get("events", []), list), f"{where}: events is a list"
    result = data.get("result", {})
    assert isinstance(result, dict), f"{path.name}: result is a mapping"
    assert set(result) <= RESULT_KEYS, f"{path.name}: unknown result keys"
    return data


def _check_texts(path: Path, where: str, texts: object) -> None:
    assert isinstance(texts, list), f"{path.name} {where}: a list of texts"
    assert all(isinstance(t, str) for t in texts), f"{path.name} {where}: texts are strings"


# -- playing it ------------------------------------------------------------------


@dataclass
class Played:
    opening: list[str]
    bots: list[list[str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _replies(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Reply)]


def _has(actual: object, wanted: object) -> bool:
    """Equal, except that a wanted mapping need only name some of the actual one's keys."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and _has(actual[key], value) for key, value in wanted.items()
        )
    return actual == wanted


def _event_matches(event: Event, wanted: str | dict[str, Any]) -> bool:
    if isinstance(wanted, str):
        return event.type == wanted
    return _has(event.model_dump(mode="json"), wanted)


def _is_subsequence(events: list[Event], wanted: list[str | dict[str, Any]]) -> bool:
    remaining = iter(events)
    return all(any(_event_matches(e, w) for e in remaining) for w in wanted)


def _describe(events: list[Event]) -> list[str]:
    out = []
    for e in events:
        fields = e.model_dump(mode="json", exclude={"type", "result", "raw_text", "text"})
        out.append(f"{e.type} {fields}" if fields else e.type)
    return out


def _check_sms(where: str, texts: list[str], failures: list[str]) -> None:
    for text in texts:
        if not is_gsm7(text):
            failures.append(f"{where}: not plain GSM-7: {text!r}")
        if len(text) > MAX_SMS_CHARACTERS:
            failures.append(f"{where}: {len(text)} characters, over 2 SMS: {text!r}")


def _diff(where: str, expected: list[str], actual: list[str]) -> str:
    def show(texts: list[str]) -> str:
        return "\n".join(f"  [{i}] {t!r}" for i, t in enumerate(texts)) or "  (silence)"

    return f"{where}: bot said\n{show(actual)}\nbut the transcript expects\n{show(expected)}"


def _play(data: dict[str, Any]) -> tuple[Played, ConversationState, datetime]:
    catalogue = builtin_catalogue()
    context = Context(**data["context"])
    now = T0
    state, events = start(data["instrument"], catalogue, context, now)
    played = Played(opening=_replies(events))
    _check_sms("opening", played.opening, played.failures)
    if not UPDATE and played.opening != data["opening"]:
        played.failures.append(_diff("opening", data["opening"], played.opening))

    for n, step in enumerate(data["steps"], start=1):
        where = f"step {n} ({step.get('patient', step.get('timer'))!r})"
        now += STEP
        serialised = state.to_json()
        restored = ConversationState.from_json(serialised)
        assert restored == state, f"before {where}: the state does not round-trip through JSON"
        if "patient" in step:
            inbound = PatientText(text=step["patient"])
        else:
            inbound = TIMERS[step["timer"]]()
        state, events = resume(restored, catalogue, inbound, now)
        said = _replies(events)
        played.bots.append(said)
        _check_sms(where, said, played.failures)
        if not UPDATE and said != step["bot"]:
            played.failures.append(_diff(where, step["bot"], said))
        wanted = step.get("events", [])
        if not _is_subsequence(events, wanted):
            played.failures.append(
                f"{where}: events {_describe(events)} do not contain {wanted} in that order"
            )
        if played.failures and not UPDATE:
            break  # later steps only repeat the first divergence
    return played, state, now


def _compare_result(expected: dict[str, Any], state: ConversationState, now: datetime) -> list[str]:
    actual = outcome(state, builtin_catalogue(), now).model_dump(mode="json")
    failures = []
    for key, want in expected.items():
        got = actual[key]
        if key == "flags":
            got, want = sorted(got), sorted(want)
        if got != want:
            failures.append(f"result {key}: engine has {got!r}, transcript expects {want!r}")
    return failures


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conversation(path: Path) -> None:
    data = _load(path)
    played, state, now = _play(data)
    if UPDATE:
        _rewrite(path, played)
    failures = played.failures
    if not failures:
        failures = _compare_result(data.get("result", {}), state, now)
    if failures:
        pytest.fail(f"{path.name}: {data['description']}\n" + "\n".join(failures), pytrace=False)


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 40, "the golden transcripts have gone missing"


# -- UPDATE_GOLDEN=1: rewriting the bot's texts in place -------------------------


def _scalar(text: str, indent: int) -> str:
    """One text as YAML, as a person would write it.

    Several lines: a ``|-`` block. One long line: a ``>-`` block folded at spaces.
    Anything else, or anything a block would not keep exactly: a one-line scalar.
    """
    pad = " " * indent
    lines = text.split("\n")
    plain = (
        text == text.strip()
        and all(line == line.rstrip() for line in lines)
        and all(ch.isprintable() for ch in text.replace("\n", ""))
    )
    if plain and len(lines) > 1:
        return "|-\n" + "\n".join(f"{pad}{line}" if line else "" for line in lines)
    if plain and len(text) > FOLD_WIDTH - indent and "  " not in text:
        folded = textwrap.wrap(
            text, FOLD_WIDTH - indent, break_long_words=False, break_on_hyphens=False
        )
        if " ".join(folded) == text:
            return ">-\n" + "\n".join(f"{pad}{line}" for line in folded)
    dumped = yaml.safe_dump(text, allow_unicode=True, width=math.inf, default_style=None)
    dumped = dumped.removesuffix("\n").removesuffix("\n...").removesuffix("\n")
    if "\n" in dumped:  # a quoted scalar folded over lines: use one escaped line
        dumped = yaml.safe_dump(text, allow_unicode=True, width=math.inf, default_style='"')
        dumped = dumped.removesuffix("\n")
    return dumped


def _sequence(texts: list[str], indent: int) -> str:
    """The text after a key's name: ``: []`` or a block sequence starting on the next line."""
    if not texts:
        return ": []"
    pad = " " * indent
    return ":" + "".join(f"\n{pad}- {_scalar(t, indent + 2)}" for t in texts)


def _value_span(text: str, key: yaml.Node, value: yaml.Node) -> tuple[int, int]:
    """Where a key's ``: value`` is in the file, without trailing blank lines or comments."""
    begin = key.end_mark.index
    if isinstance(value, yaml.SequenceNode) and value.value and not value.flow_style:
        end = value.value[-1].end_mark.index
    else:
        end = value.end_mark.index
    while end > begin and text[end - 1] in " \n":
        end -= 1
    return begin, end


def _rewrite(path: Path, played: Played) -> None:
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    edits: list[tuple[int, int, str]] = []
    for key, value in root.value:
        if key.value == "opening":
            edits.append((*_value_span(text, key, value), _sequence(played.opening, 2)))
        elif key.value == "steps":
            for step_node, said in zip(value.value, played.bots, strict=True):
                for step_key, step_value in step_node.value:
                    if step_key.value == "bot":
                        indent = step_key.start_mark.column + 2
                        span = _value_span(text, step_key, step_value)
                        edits.append((*span, _sequence(said, indent)))
    for begin, end, replacement in sorted(edits, reverse=True):
        text = text[:begin] + replacement + text[end:]
    reread = yaml.safe_load(text)
    assert reread["opening"] == played.opening, f"{path.name}: rewriting garbled the opening"
    assert [s["bot"] for s in reread["steps"]] == played.bots, f"{path.name}: rewrite garbled"
    path.write_text(text, encoding="utf-8")
