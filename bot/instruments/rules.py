"""Named predicates for flags and branching, written in instrument files.

A rule is a one-key mapping such as ``{item_above: {item: self_harm, value: 0}}``
or ``{any: [...]}``. There is no ``eval``: each name below is a small class that
knows how to evaluate itself and which items and bands it refers to, so a file
can be checked for dangling references when it is loaded.

Every rule is false when the facts it needs are missing: an unanswered item is
never "0", and a missing total is never "below 13".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Facts:
    """What a rule may look at."""

    answers: Mapping[str, int]
    scored_items: tuple[str, ...]
    total: int | None = None
    band: str | None = None


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def evaluate(self, facts: Facts) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def items(self) -> set[str]:
        """Item ids this rule reads (``*`` for all scored items)."""
        return set()

    def bands(self) -> set[str]:
        return set()


class ItemThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    item: str
    value: int


class ItemAbove(_Rule):
    item_above: ItemThreshold

    def evaluate(self, facts: Facts) -> bool:
        answer = facts.answers.get(self.item_above.item)
        return answer is not None and answer > self.item_above.value

    def items(self) -> set[str]:
        return {self.item_above.item}


class AnyScoredItemAbove(_Rule):
    any_scored_item_above: int

    def evaluate(self, facts: Facts) -> bool:
        return any(
            facts.answers[i] > self.any_scored_item_above
            for i in facts.scored_items
            if i in facts.answers
        )

    def items(self) -> set[str]:
        return {"*"}


class AnyScoredItemAtMost(_Rule):
    any_scored_item_at_most: int

    def evaluate(self, facts: Facts) -> bool:
        return any(
            facts.answers[i] <= self.any_scored_item_at_most
            for i in facts.scored_items
            if i in facts.answers
        )

    def items(self) -> set[str]:
        return {"*"}


class TotalBelow(_Rule):
    total_below: int

    def evaluate(self, facts: Facts) -> bool:
        return facts.total is not None and facts.total < self.total_below


class TotalAtLeast(_Rule):
    total_at_least: int

    def evaluate(self, facts: Facts) -> bool:
        return facts.total is not None and facts.total >= self.total_at_least


class BandIn(_Rule):
    band_in: list[str] = Field(min_length=1)

    def evaluate(self, facts: Facts) -> bool:
        return facts.band is not None and facts.band in self.band_in

    def bands(self) -> set[str]:
        return set(self.band_in)


class AnyOf(_Rule):
    any: list[Rule] = Field(min_length=1)

    def evaluate(self, facts: Facts) -> bool:
        return any(rule.evaluate(facts) for rule in self.any)

    def items(self) -> set[str]:
        return set().union(*(rule.items() for rule in self.any))

    def bands(self) -> set[str]:
        return set().union(*(rule.bands() for rule in self.any))


class AllOf(_Rule):
    all: list[Rule] = Field(min_length=1)

    def evaluate(self, facts: Facts) -> bool:
        return all(rule.evaluate(facts) for rule in self.all)

    def items(self) -> set[str]:
        return set().union(*(rule.items() for rule in self.all))

    def bands(self) -> set[str]:
        return set().union(*(rule.bands() for rule in self.all))


Rule = Annotated[
    Union[  # noqa: UP007 - pydantic needs the forward reference resolved here
        ItemAbove,
        AnyScoredItemAbove,
        AnyScoredItemAtMost,
        TotalBelow,
        TotalAtLeast,
        BandIn,
        AnyOf,
        AllOf,
    ],
    Field(union_mode="left_to_right"),
]

AnyOf.model_rebuild()
AllOf.model_rebuild()

RULE_NAMES = (
    "item_above",
    "any_scored_item_above",
    "any_scored_item_at_most",
    "total_below",
    "total_at_least",
    "band_in",
    "any",
    "all",
)
