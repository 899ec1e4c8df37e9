"""Everyday words for a scale's options, shared by every questionnaire that uses the scale.

People answer "how often?" with "sometimes", "now and then", "most of the
time" and "nope" far more than with "Several days". Those ways of speaking
belong to the scale, not to one questionnaire, so they live in one file per
scale (``vocabulary/*.yaml``) that any option set can name
(``vocabulary: frequency``), a practice's own questionnaire included.

A vocabulary maps option labels to phrases. It is checked on its own when
loaded (no phrase under two labels, no phrase that is a bare number or a
letter, which are answer keys) and again against each option set that names
it (every label is one of the set's options; no phrase points at an option
other than the one the set's own words give it). A phrase pointing at two
options would be a guess, and a guess can change a clinical score.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
_KEY = re.compile(r"^(?:\d+|[a-j])$")


def normalise(text: str) -> str:
    """Lower case, digits as ASCII, apostrophes dropped, other punctuation and emoji as spaces.

    "Don't", "dont" and "don\u2019t" all become "dont"; "2)" becomes "2"; a
    keycap or full-width digit becomes its ASCII digit.
    """
    text = unicodedata.normalize("NFKC", text).casefold().replace("+", " plus ")
    text = re.sub(r"(?<=\w)['\u2019\u2018`](?=\w)", "", text)
    kept = [ch if ch.isalnum() else " " for ch in text]
    return " ".join("".join(kept).split())


class Vocabulary(BaseModel):
    """One scale's everyday phrases, by option label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    scale: str = Field(min_length=1, description="which options this is for, in words")
    options: dict[str, tuple[str, ...]] = Field(min_length=1)
    number_suffixes: tuple[str, ...] = Field(
        default=(),
        description='words after a bare number that leave it the same number ("3 units")',
    )

    @field_validator("options")
    @classmethod
    def _phrases_are_words(cls, options: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        problems = []
        for label, phrases in options.items():
            if not normalise(label):
                problems.append(f"label {label!r} has no words")
            for phrase in phrases:
                words = normalise(phrase)
                if not words:
                    problems.append(f"{label!r}: phrase {phrase!r} has no words")
                elif _KEY.match(words):
                    problems.append(
                        f"{label!r}: phrase {phrase!r} is a number or a letter, "
                        "which are answer keys"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return options

    @model_validator(mode="after")
    def _one_option_per_phrase(self) -> Vocabulary:
        owner: dict[str, str] = {}
        problems = []
        for label, phrases in self.options.items():
            for phrase in phrases:
                words = normalise(phrase)
                if words in owner and owner[words] != label:
                    problems.append(
                        f"phrase {phrase!r} is given to both {owner[words]!r} and {label!r}"
                    )
                elif words in owner:
                    problems.append(f"phrase {phrase!r} is listed twice under {label!r}")
                owner[words] = label
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def phrases(self) -> dict[str, str]:
        """Each phrase, normalised, with the label of the option it means."""
        return {
            normalise(phrase): label
            for label, phrases in self.options.items()
            for phrase in phrases
        }
