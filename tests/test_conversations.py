"""Golden conversation transcripts: each file in tests/conversations/ is one conversation.

A transcript is a specification a person can read: what the patient texts, what
the bot must answer, word for word, what happened (every event), and the
result at the end. The runner plays it against the engine the way the shell
would (modelled on nyaruka/goflow's flow tests):

- the clock is fixed: ``start`` at ``T0`` and step *n* at ``T0 + n minutes``;
- the state goes through ``to_json`` / ``from_json`` before every step, so
  nothing may live outside it;
- each step's reply texts must equal ``bot`` exactly, in order;
- each step's ``events`` must equal the engine's events exactly: all of them,
  in order, nothing extra (an unexpected ``flag_raised`` fails). An event is
  written as its type when it has no fields (``opted_out``), as ``{type:
  reply, kind: ...}`` for a reply (its text is in ``bot``), as the result's
  summary for ``result_recorded`` (instrument, status, total, band, flags),
  and otherwise as all its fields but ``raw_text`` (which must equal the
  patient's text) and those left at their defaults;
- a step may send ``media: N`` attachments with the patient's text (an MMS);
- every reply is plain GSM-7 and fits in two SMS segments;
- ``result`` is compared with ``bot.flows.outcome`` at the end, on the keys
  given only (``flags`` in any order).

Every reply a patient can get comes from the engine, so the shell's cases have
transcripts too: ``without_conversation: {opted_out: false}`` (instead of
``instrument`` and ``opening``) plays texts from a known patient with nothing
open through ``respond_without_conversation``, carrying opt-outs from step to
step as the shell does; ``stranger: true`` plays texts from an unknown
number through ``respond_to_stranger``.

``UPDATE_GOLDEN=1 pytest tests/test_conversations.py`` rewrites the ``opening``,
``bot`` and ``events`` of each step from what the engine now does, in place,
leaving everything else (comments included) as it is; the results are never
rewritten. Read the diff before committing it: a rewritten golden is a
changed specification.
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
    respond_to_stranger,
    respond_without_conversation,
    resume,
    start,
)
from bot.flows.events import (
    AnswerRecorded,
    AnswerRejected,
    OptedIn,
    OptedOut,
    Reply,
    ResultRecorded,
)
from bot.instruments import builtin_catalogue
from bot.instruments.gsm7 import is_gsm7

HERE = Path(__file__).parent / "conversations"
FILES = sorted(HERE.glob("*.yaml"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
MAX_SMS_CHARACTERS = 306  # two GSM-7 segments
FOLD_WIDTH = 92  # where UPDATE_GOLDEN folds a long one-line text

MODES = {"instrument", "without_conversation", "stranger"}
TOP_KEYS = {"description", "context", "opening", "steps", "result"} | MODES
STEP_KEYS = {"patient", "media", "timer", "bot", "events"}
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
    modes = keys & MODES
    assert len(modes) == 1, f"{path.name}: one of {sorted(MODES)}"
    required = {"description", "steps"}
    if "instrument" in keys:
        required |= {"context", "opening"}
        _check_texts(path, "opening", data["opening"])
    elif "without_conversation" in keys:
        required |= {"context"}
        assert set(data["without_conversation"]) == {"opted_out"}, f"{path.name}: opted_out"
        assert "opening" not in keys and "result" not in keys, f"{path.name}: nothing opens"
    else:
        assert data["stranger"] is True, f"{path.name}: stranger: true"
        assert keys == {"description", "stranger", "steps"}, (
            f"{path.name}: a stranger has no context"
        )
    assert keys >= required, f"{path.name}: missing {sorted(required - keys)}"
    assert isinstance(data["description"], str) and data["description"].strip()
    assert "\n" not in data["description"].strip(), f"{path.name}: description is one line"
    assert isinstance(data.get("context", {}), dict), f"{path.name}: context is a mapping"
    assert isinstance(data["steps"], list) and data["steps"], f"{path.name}: no steps"
    for n, step in enumerate(data["steps"], start=1):
        where = f"{path.name} step {n}"
        assert isinstance(step, dict), f"{where}: not a mapping"
        assert set(step) <= STEP_KEYS, f"{where}: unknown keys {sorted(set(step) - STEP_KEYS)}"
        assert ("patient" in step) != ("timer" in step), f"{where}: one of patient or timer"
        if "patient" in step:
            assert isinstance(step["patient"], str), f"{where}: patient text must be a string"
        else:
            assert "instrument" in data, f"{where}: timers run only in a conversation"
            assert step["timer"] in TIMERS, f"{where}: timer is one of {sorted(TIMERS)}"
            assert "media" not in step, f"{where}: media comes with a patient's text"
        assert "bot" in step, f"{where}: bot is required (use [] for silence)"
        _check_texts(path, f"step {n} bot", step["bot"])
        assert "events" in step or UPDATE, f"{where}: events is required (use [] for none)"
        assert isinstance(step.get("events", []), list), f"{where}: events is a list"
    result = data.get("result", {})
    assert isinstance(result, dict), f"{path.name}: result is a mapping"
    assert set(result) <= RESULT_KEYS, f"{path.name}: unknown result keys"
    return data


def _check_texts(path: Path, where: str, texts: object) -> None:
    assert isinstance(texts, list), f"{path.name} {where}: a list of texts"
    assert all(isinstance(t, str) for t in texts), f"{path.name} {where}: texts are strings"


# -- events as a transcript writes them ----------------------------------------------


def canonical(event: Event) -> str | dict[str, Any]:
    """An event as a transcript writes it (see the module's docstring)."""
    if isinstance(event, Reply):
        return {"type": "reply", "kind": event.kind}
    if isinstance(event, ResultRecorded):
        r = event.result
        summary: dict[str, Any] = {
            "type": "result_recorded",
            "instrument": r.instrument,
            "status": r.status,
            "total": r.total,
            "band": r.band,
            "flags": list(r.flags),
        }
        if r.percentage is not None:
            summary["percentage"] = r.percentage
        if r.prorated:
            summary["prorated"] = True
        return summary
    fields = event.model_dump(mode="json", exclude_defaults=True, exclude={"type", "raw_text"})
    return {"type": event.type, **fields} if fields else event.type


# -- playing it ------------------------------------------------------------------


@dataclass
class Played:
    opening: list[str]
    bots: list[list[str]] = field(default_factory=list)
    events: list[list[str | dict[str, Any]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _replies(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, Reply)]


def _check_sms(where: str, texts: list[str], failures: list[str]) -> None:
    for text in texts:
        if not is_gsm7(text):
            failures.append(f"{where}: not plain GSM-7: {text!r}")
        if len(text) > MAX_SMS_CHARACTERS:
            failures.append(f"{where}: {len(text)} characters, over 2 SMS: {text!r}")


def _diff(where: str, expected: list[Any], actual: list[Any], what: str = "bot said") -> str:
    def show(items: list[Any]) -> str:
        return "\n".join(f"  [{i}] {t!r}" for i, t in enumerate(items)) or "  (nothing)"

    return f"{where}: {what}\n{show(actual)}\nbut the transcript expects\n{show(expected)}"


class _Player:
    """Plays one step at a time, the way the shell would in this transcript's mode."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.catalogue = builtin_catalogue()
        self.data = data
        self.state: ConversationState | None = None
        self.opted_out = bool(data.get("without_conversation", {}).get("opted_out"))
        self.context = Context(**data["context"]) if "context" in data else None

    def open(self, now: datetime) -> list[Event]:
        if "instrument" not in self.data:
            return []
        assert self.context is not None
        self.state, events = start(self.data["instrument"], self.catalogue, self.context, now)
        return events

    def step(self, inbound: Any, now: datetime, where: str) -> list[Event]:
        if self.state is not None:
            restored = ConversationState.from_json(self.state.to_json())
            assert restored == self.state, f"before {where}: the state does not round-trip"
            self.state, events = resume(restored, self.catalogue, inbound, now)
            return events
        if "stranger" in self.data:
            return respond_to_stranger()
        assert self.context is not None
        events = respond_without_conversation(self.context, inbound, opted_out=self.opted_out)
        for event in events:  # as the shell stores it on the patient
            if isinstance(event, OptedOut):
                self.opted_out = True
            elif isinstance(event, OptedIn):
                self.opted_out = False
        return events


def _play(data: dict[str, Any], *, update: bool = UPDATE) -> tuple[Played, _Player, datetime]:
    player = _Player(data)
    now = T0
    played = Played(opening=_replies(player.open(now)))
    _check_sms("opening", played.opening, played.failures)
    if not update and played.opening != data.get("opening", []):
        played.failures.append(_diff("opening", data["opening"], played.opening))

    for n, step in enumerate(data["steps"], start=1):
        where = f"step {n} ({step.get('patient', step.get('timer'))!r})"
        now += STEP
        if "patient" in step:
            inbound = PatientText(text=step["patient"], media=step.get("media", 0))
        else:
            inbound = TIMERS[step["timer"]]()
        events = player.step(inbound, now, where)
        said = _replies(events)
        written = [canonical(e) for e in events]
        played.bots.append(said)
        played.events.append(written)
        _check_sms(where, said, played.failures)
        for event in events:
            if isinstance(event, AnswerRecorded | AnswerRejected) and event.raw_text != step.get(
                "patient"
            ):
                played.failures.append(f"{where}: {event.type} keeps other words than were sent")
        if not update and said != step["bot"]:
            played.failures.append(_diff(where, step["bot"], said))
        if not update and written != step["events"]:
            played.failures.append(_diff(where, step["events"], written, "the events were"))
        if played.failures and not update:
            break  # later steps only repeat the first divergence
    return played, player, now


def _compare_result(expected: dict[str, Any], player: _Player, now: datetime) -> list[str]:
    if player.state is None:
        return []
    actual = outcome(player.state, player.catalogue, now).model_dump(mode="json")
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
    played, player, now = _play(data)
    if UPDATE:
        _rewrite(path, played)
    failures = played.failures
    if not failures:
        failures = _compare_result(data.get("result", {}), player, now)
    if failures:
        pytest.fail(f"{path.name}: {data['description']}\n" + "\n".join(failures), pytrace=False)


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 40, "the golden transcripts have gone missing"


def test_the_runner_fails_on_an_event_the_transcript_does_not_expect() -> None:
    """An extra flag_raised is a failure, not a detail: exact means exact."""
    data = _load(HERE / "phq9_item9_above_zero_safety_message.yaml")
    step = next(s for s in data["steps"] if s.get("patient") == "Several days")
    assert any(isinstance(e, dict) and e.get("type") == "flag_raised" for e in step["events"])
    step["events"] = [
        e for e in step["events"] if not (isinstance(e, dict) and e.get("type") == "flag_raised")
    ]
    played, _, _ = _play(data, update=False)
    assert any("the events were" in failure for failure in played.failures)


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


def _flow(item: str | dict[str, Any]) -> str:
    """One event as a one-line YAML flow item."""
    dumped = yaml.safe_dump(item, default_flow_style=True, width=math.inf, sort_keys=False)
    return dumped.removesuffix("\n").removesuffix("\n...").removesuffix("\n")


def _event_list(events: list[str | dict[str, Any]], indent: int) -> str:
    """The text after ``events``: one flow line when short, else one event per line."""
    items = [_flow(e) for e in events]
    one_line = f": [{', '.join(items)}]"
    if len(one_line) + indent + len("events") <= 100:
        return one_line
    pad = " " * indent
    return ":" + "".join(f"\n{pad}- {item}" for item in items)


def _rewrite(path: Path, played: Played) -> None:
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    edits: list[tuple[int, int, str]] = []
    for key, value in root.value:
        if key.value == "opening":
            edits.append((*_value_span(text, key, value), _sequence(played.opening, 2)))
        elif key.value == "steps":
            steps = zip(value.value, played.bots, played.events, strict=True)
            for step_node, said, events in steps:
                found_events = False
                bot_end = 0
                for step_key, step_value in step_node.value:
                    indent = step_key.start_mark.column + 2
                    span = _value_span(text, step_key, step_value)
                    if step_key.value == "bot":
                        edits.append((*span, _sequence(said, indent)))
                        bot_end = span[1]
                    elif step_key.value == "events":
                        edits.append((*span, _event_list(events, indent)))
                        found_events = True
                if not found_events:
                    column = step_node.value[0][0].start_mark.column
                    insert = f"\n{' ' * column}events{_event_list(events, column + 2)}"
                    edits.append((bot_end, bot_end, insert))
    for begin, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:begin] + replacement + text[end:]
    reread = yaml.safe_load(text)
    assert reread.get("opening", []) == played.opening, f"{path.name}: rewrite garbled opening"
    assert [s["bot"] for s in reread["steps"]] == played.bots, f"{path.name}: rewrite garbled"
    assert [s["events"] for s in reread["steps"]] == played.events, f"{path.name}: garbled"
    path.write_text(text, encoding="utf-8")
