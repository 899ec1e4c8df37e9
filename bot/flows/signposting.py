"""Crisis signposting by the practice's nation, from ``crisis_lines.yaml``.

Northern Ireland has no NHS 111, Wales's mental health line is "111 press 2",
Scotland's is NHS 24 on 111: one text for the whole UK would send someone in
crisis to a number that does not answer where they live. The words and the
source of every number are data; this module loads and checks them once, at
import, so a bad file stops the service at start-up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from bot.instruments.gsm7 import is_gsm7

Nation = Literal["ENG", "WLS", "SCT", "NIR", "UK"]
NATIONS: tuple[str, ...] = get_args(Nation)
"""ENG, WLS, SCT and NIR as a practice records them; UK when its nation is not known."""

DATA_FILE = Path(__file__).with_name("crisis_lines.yaml")
# A phone number in the words: three digits or more ("999", "116 123"); not
# "NHS 24" (a name) or "press 2" (a menu choice).
_NUMBER = re.compile(r"(?<![\w])\d{3,}(?: \d{3,})*(?![\w])")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str = Field(min_length=3)
    service: str = Field(min_length=1)
    url: HttpUrl
    own_page: bool = Field(description="the service's own published page, not a third party's")
    note: str | None = None


def _check_sources(words: str, sources: tuple[Source, ...]) -> str:
    if not is_gsm7(words):
        raise ValueError(f"{words!r} is not plain GSM-7 text")
    said = set(_NUMBER.findall(words))
    sourced = {s.number for s in sources}
    if said != sourced:
        raise ValueError(
            f"{words!r}: numbers without a source {sorted(said - sourced)}, "
            f"sources for numbers not in the words {sorted(sourced - said)}"
        )
    return words


class NationLines(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lines: str = Field(min_length=1)
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _sourced(self) -> NationLines:
        _check_sources(self.lines, self.sources)
        if "999" not in self.lines or "116 123" not in self.lines:
            raise ValueError(f"{self.name}: every nation gives 999 and Samaritans 116 123")
        return self


class TextLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    words: str = Field(min_length=1)
    sources: tuple[Source, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _sourced(self) -> TextLine:
        _check_sources(self.words, self.sources)
        return self


class CrisisLines(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    checked: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    nations: dict[Nation, NationLines]
    text_line: TextLine

    @model_validator(mode="after")
    def _every_nation(self) -> CrisisLines:
        missing = set(NATIONS) - set(self.nations)
        if missing:
            raise ValueError(f"no crisis lines for {sorted(missing)}")
        return self


def load(path: Path = DATA_FILE) -> CrisisLines:
    """The crisis lines file, checked: every nation, every number sourced, GSM-7."""
    return CrisisLines.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


CRISIS_LINES = load()


def crisis_lines(nation: Nation) -> str:
    """999/A&E, the nation's urgent mental health line and Samaritans, in one sentence or two."""
    return CRISIS_LINES.nations[nation].lines


def text_line() -> str:
    """Help by text (Shout), for the safety message: the patient is already texting."""
    return CRISIS_LINES.text_line.words


def nation_of(practice_nation: str | None) -> Nation:
    """The signposting nation for a practice's recorded nation (UK-wide when it has none)."""
    code = (practice_nation or "").strip().upper()
    return code if code in NATIONS and code != "UK" else "UK"  # type: ignore[return-value]
