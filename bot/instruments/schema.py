"""The shape of a questionnaire file, and the checks that make a bad file fail at start-up.

Pydantic checks the structure; ``Instrument``'s validator checks the graph:
items referred to by rules and branches exist and come earlier, band ranges
cover every total the items can produce without gaps or overlaps, option
numbers are unique, and every text is plain GSM-7 so it goes out as it reads.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from bot.instruments import rules as r
from bot.instruments.gsm7 import non_gsm7_characters
from bot.instruments.rules import Facts, Rule
from bot.instruments.vocabulary import Vocabulary, normalise

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
# linkIds the FHIR Questionnaire uses for the stem and the total (bot/fhir): not item ids
RESERVED_ITEM_IDS = frozenset({"stem", "total"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    """One answer: its value (also the number a patient replies with) and its words."""

    value: int = Field(ge=0, le=9)
    label: str = Field(min_length=1)
    synonyms: tuple[str, ...] = ()
    number_range: tuple[int, int] | None = Field(
        default=None,
        description="a bare number in this range chooses this option (letter-keyed sets only)",
    )


def loinc_check_digit(digits: str) -> int:
    """LOINC's mod-10 check digit (LOINC Users' Guide): a typo in a code fails it."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10


def _loinc_code(code: str | None) -> str | None:
    """A LOINC term code such as 44261-6, its check digit right."""
    if code is None:
        return None
    match = re.fullmatch(r"(\d{1,7})-(\d)", code)
    if match is None:
        raise ValueError(f"{code!r} is not a LOINC code such as 44261-6")
    if loinc_check_digit(match[1]) != int(match[2]):
        raise ValueError(f"{code!r} has the wrong LOINC check digit: a typo?")
    return code


LoincCode = Annotated[str, AfterValidator(_loinc_code)]
SnomedCode = Annotated[str, Field(pattern=r"^[1-9]\d{5,17}$")]


class LoincAnswer(_Model):
    """A LOINC answer (LA) code and LOINC's own display for it, for the FHIR export."""

    code: str = Field(pattern=r"^LA\d{1,8}-\d$")
    display: str = Field(min_length=1)


class OptionSet(_Model):
    """The answers to an item, and how a patient picks one.

    ``keys: numbers`` (the default) means the patient replies with the option's
    value. ``keys: letters`` is for options whose words are themselves numbers
    (AUDIT-C's "3 to 4 units"): a reply of "3" must then mean three units, not
    the option numbered 3, so options are picked by letter (A, B, ...) instead.
    """

    keys: Literal["numbers", "letters"] = "numbers"
    options: tuple[Option, ...]
    vocabulary: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="a shared vocabulary of everyday words for these options (vocabulary/*.yaml)",
    )
    # Filled by the loader from the named vocabulary: phrase -> value, and number suffixes.
    _everyday: dict[str, int] = PrivateAttr(default_factory=dict)
    _number_suffixes: tuple[str, ...] = PrivateAttr(default=())
    loinc_answer_list: str | None = Field(
        default=None,
        pattern=r"^LL\d{1,8}-\d$",
        description="the LOINC answer list (LL) these answers come from, for the record",
    )
    loinc_answers: dict[int, LoincAnswer] | None = Field(
        default=None,
        description="option value -> LOINC answer; used only by items that carry a LOINC code",
    )

    def key_of(self, option: Option) -> str:
        if self.keys == "numbers":
            return str(option.value)
        return "ABCDEFGHIJ"[self.options.index(option)]

    def own_phrases(self) -> dict[str, int]:
        """The set's own words (labels and synonyms), normalised, with their values."""
        return {
            normalise(words): option.value
            for option in self.options
            for words in (option.label, *option.synonyms)
        }

    def phrases(self) -> dict[str, int]:
        """Every phrase that names one option: the set's own words and its vocabulary's."""
        return {**self._everyday, **self.own_phrases()}

    @property
    def number_suffixes(self) -> tuple[str, ...]:
        return self._number_suffixes

    def with_vocabulary(self, vocabulary: Vocabulary) -> OptionSet:
        """A copy that also understands the vocabulary's phrases; ValueError if they clash."""
        by_label = {normalise(o.label): o for o in self.options}
        own = self.own_phrases()
        labels = {o.value: o.label for o in self.options}
        problems = []
        everyday: dict[str, int] = {}
        for label in vocabulary.options:
            if normalise(label) not in by_label:
                problems.append(
                    f"vocabulary {vocabulary.id!r} has words for {label!r}, which is not one of "
                    f"its options ({', '.join(o.label for o in self.options)})"
                )
        for phrase, label in vocabulary.phrases().items():
            option = by_label.get(normalise(label))
            if option is None:
                continue
            if phrase in own and own[phrase] != option.value:
                problems.append(
                    f"vocabulary {vocabulary.id!r} gives {phrase!r} to {option.label!r} but "
                    f"the option set gives it to {labels[own[phrase]]!r}"
                )
            everyday[phrase] = option.value
        if problems:
            raise ValueError("; ".join(problems))
        resolved = self.model_copy()
        resolved._everyday = everyday
        resolved._number_suffixes = tuple(normalise(s) for s in vocabulary.number_suffixes)
        return resolved


class Item(_Model):
    id: str = Field(pattern=ID_PATTERN)
    text: str = Field(min_length=1)
    options: str = Field(description="name of an option set")
    scored: bool = True
    ask_when: Rule | None = None
    loinc: LoincCode | None = None
    loinc_answers: dict[int, LoincAnswer] | None = Field(
        default=None,
        description="this item's own LOINC answers, where LOINC gives it other ones than its set's",
    )
    safety_critical: bool = Field(
        default=False,
        description=(
            "a risk question (PHQ-9 item 9): any reply that is not clearly a safe answer "
            "gets the crisis message and raises the item's crisis flag"
        ),
    )


class Band(_Model):
    id: str = Field(pattern=ID_PATTERN)
    label: str
    min: int
    max: int


class Flag(_Model):
    id: str = Field(pattern=ID_PATTERN)
    when: Rule
    severity: Literal["urgent", "routine", "information"]
    immediate: bool = Field(
        default=False, description="raise as soon as the answers make it true, not at the end"
    )
    crisis_signposting: bool = Field(
        default=False, description="send the crisis message to the patient when raised"
    )


class Prorating(_Model):
    """Score an incomplete questionnaire from the mean of the answered items."""

    max_missing: int = Field(ge=1)
    source: str = Field(min_length=1)


class Scoring(_Model):
    method: Literal["sum"] = "sum"
    percentage_multiplier: int | None = None
    prorating: Prorating | None = None


class Codes(_Model):
    """The instrument's codes for the GP record, each checked against a source (docs/fhir.md)."""

    loinc_panel: LoincCode | None = None
    loinc_total: LoincCode | None = None
    snomed_total: SnomedCode | None = None
    snomed_total_display: str | None = None


class ChangeRules(_Model):
    """How much a change between two totals means, from a published definition.

    ``reliable_change`` is the smallest change (on ``scale``) that counts as
    reliable; ``caseness_min`` the lowest total that is a clinical case, for
    recovery (from caseness at baseline to below it). Applied by
    ``bot/instruments/change.py``; thresholds and sources in docs/scoring.md.
    """

    scale: Literal["total", "percentage"] = "total"
    reliable_change: int = Field(ge=1)
    higher_is_better: bool = False
    caseness_min: int | None = None
    source: str = Field(min_length=1)
    checked: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="date the source was checked")


class Continuation(_Model):
    """Go straight on to a fuller instrument when this one screens positive.

    Items with the same id in both instruments are carried over, not asked twice.
    """

    instrument: str = Field(pattern=ID_PATTERN)
    when: Rule


class Instrument(_Model):
    id: str = Field(pattern=ID_PATTERN)
    version: str
    title: str
    short_title: str = Field(max_length=20)
    licence: str
    source: str
    languages: tuple[str, ...] = ("en",)
    stem: str = Field(min_length=1)
    option_sets: dict[str, OptionSet]
    items: tuple[Item, ...] = Field(min_length=1)
    scoring: Scoring = Scoring()
    bands: tuple[Band, ...] = Field(min_length=1)
    flags: tuple[Flag, ...] = ()
    minimal_important_change: int | None = None
    minimal_important_change_source: str | None = None
    codes: Codes = Codes()
    continuation: Continuation | None = None
    change: ChangeRules | None = None

    # -- derived views -------------------------------------------------------

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def option_set_for(self, item_id: str) -> OptionSet:
        return self.option_sets[self.item(item_id).options]

    def options_for(self, item_id: str) -> tuple[Option, ...]:
        return self.option_set_for(item_id).options

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    @property
    def scored_item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items if item.scored)

    @property
    def total_range(self) -> tuple[int, int]:
        low = sum(min(o.value for o in self.options_for(i)) for i in self.scored_item_ids)
        high = sum(max(o.value for o in self.options_for(i)) for i in self.scored_item_ids)
        return low, high

    def crisis_flag_for(self, item_id: str) -> Flag | None:
        """The immediate, crisis-signposting flag that some answer to this item raises alone."""
        for flag in self.flags:
            if flag.immediate and flag.crisis_signposting and self._raises(flag, item_id):
                return flag
        return None

    def safe_values(self, item_id: str) -> frozenset[int]:
        """The answers to an item that raise no crisis flag: a clear "not at all" for item 9."""
        crisis = [f for f in self.flags if f.immediate and f.crisis_signposting]
        return frozenset(
            o.value
            for o in self.options_for(item_id)
            if not any(self._fires(f, item_id, o.value) for f in crisis)
        )

    def _fires(self, flag: Flag, item_id: str, value: int) -> bool:
        facts = Facts(answers={item_id: value}, scored_items=self.scored_item_ids)
        return flag.when.evaluate(facts)

    def _raises(self, flag: Flag, item_id: str) -> bool:
        return any(self._fires(flag, item_id, o.value) for o in self.options_for(item_id))

    def band_for(self, total: int) -> Band:
        for band in self.bands:
            if band.min <= total <= band.max:
                return band
        raise ValueError(f"{self.id}: no band covers total {total}")

    # -- graph checks --------------------------------------------------------

    @model_validator(mode="after")
    def _check_graph(self) -> Instrument:
        problems: list[str] = []
        ids = [item.id for item in self.items]
        if len(set(ids)) != len(ids):
            problems.append("item ids are not unique")
        for reserved in RESERVED_ITEM_IDS.intersection(ids):
            problems.append(f"item id {reserved!r} is reserved for the FHIR export")
        if not self.scored_item_ids:
            problems.append("no scored items")
        for name, option_set in self.option_sets.items():
            options = option_set.options
            if option_set.keys == "numbers" and any(o.number_range for o in options):
                problems.append(f"option set {name!r} uses number_range but is keyed by numbers")
            ranges = sorted(o.number_range for o in options if o.number_range)
            for (_, high), (low, _) in itertools.pairwise(ranges):
                if low <= high:
                    problems.append(f"option set {name!r} has overlapping number ranges")
            values = [o.value for o in options]
            if len(options) < 2:
                problems.append(f"option set {name!r} has fewer than 2 options")
            if len(set(values)) != len(values):
                problems.append(f"option set {name!r} repeats a value")
            words = [w.lower() for o in options for w in (o.label, *o.synonyms)]
            if len(set(words)) != len(words):
                problems.append(f"option set {name!r} gives the same words to two options")
        for position, item in enumerate(self.items):
            if item.options not in self.option_sets:
                problems.append(f"item {item.id!r} uses unknown option set {item.options!r}")
            if item.ask_when is not None:
                earlier = set(ids[:position])
                for ref in item.ask_when.items():
                    if ref == "*":
                        if any(i not in earlier for i in self.scored_item_ids if i != item.id):
                            problems.append(
                                f"item {item.id!r} branches on all scored items but some come later"
                            )
                    elif ref not in earlier:
                        problems.append(
                            f"item {item.id!r} branches on {ref!r}, which is not an earlier item"
                        )
                if item.ask_when.bands():
                    problems.append(f"item {item.id!r} branches on a band, which is not known yet")
        if problems:
            raise ValueError("; ".join(problems))
        problems += self._check_bands()
        band_ids = {band.id for band in self.bands}
        rules = [(f"flag {f.id!r}", f.when) for f in self.flags]
        if self.continuation:
            rules.append(("continuation", self.continuation.when))
        for where, rule in rules:
            for ref in rule.items() - {"*"}:
                if ref not in ids:
                    problems.append(f"{where} refers to unknown item {ref!r}")
            for ref in rule.bands() - band_ids:
                problems.append(f"{where} refers to unknown band {ref!r}")
        for flag in self.flags:
            if flag.immediate and (flag.when.bands() or _reads_total(flag.when)):
                problems.append(f"flag {flag.id!r} is immediate but needs the total")
        problems += self._check_safety_items()
        problems += self._check_change()
        problems += self._check_text()
        problems += self._check_loinc_answers()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _check_safety_items(self) -> list[str]:
        """A risk item says so, and has an urgent crisis flag and a clear safe answer.

        The engine's rule for a safety-critical item (anything but a clear safe
        answer gets the crisis message and the flag) needs both; and an item
        whose answer alone sends the crisis message must be marked, so that a
        worded reply to it can never slip through as "not understood".
        """
        problems = []
        crisis = [f for f in self.flags if f.immediate and f.crisis_signposting]
        for item in self.items:
            raised_by = [f for f in crisis if self._raises(f, item.id)]
            if raised_by and not item.safety_critical:
                problems.append(
                    f"flag {raised_by[0].id!r} sends the crisis message on an answer to item "
                    f"{item.id!r}: mark the item safety_critical: true"
                )
            if not item.safety_critical:
                continue
            if not raised_by:
                problems.append(
                    f"item {item.id!r} is safety_critical but no immediate flag with "
                    "crisis_signposting is raised by its answers"
                )
                continue
            if raised_by[0].severity != "urgent":
                problems.append(
                    f"item {item.id!r} is safety_critical but its crisis flag "
                    f"{raised_by[0].id!r} is not urgent"
                )
            if not self.safe_values(item.id):
                problems.append(
                    f"item {item.id!r} is safety_critical but every answer raises its crisis "
                    "flag, so no reply is a clear safe answer"
                )
        return problems

    def _check_loinc_answers(self) -> list[str]:
        """LOINC answers cover every option, and only items with a LOINC code use them.

        An answer code means something only as the answer to its LOINC question, so
        an item without one (AUDIT-C's UK units) keeps our own codes.
        """
        problems = []
        coded_sets = {item.options for item in self.items if item.loinc}
        for name, option_set in self.option_sets.items():
            if option_set.loinc_answers is None:
                continue
            if set(option_set.loinc_answers) != {o.value for o in option_set.options}:
                problems.append(f"option set {name!r} has LOINC answers for other values")
            if name not in coded_sets:
                problems.append(f"option set {name!r} has LOINC answers but no LOINC-coded item")
        for item in self.items:
            if item.loinc_answers is None:
                continue
            if item.loinc is None:
                problems.append(f"item {item.id!r} has LOINC answers but no LOINC code")
            values = {o.value for o in self.option_sets[item.options].options}
            if set(item.loinc_answers) != values:
                problems.append(f"item {item.id!r} has LOINC answers for other values")
        return problems

    def _check_change(self) -> list[str]:
        rules = self.change
        if rules is None:
            return []
        problems = []
        low, high = self.total_range
        if rules.scale == "percentage" and not self.scoring.percentage_multiplier:
            problems.append("change is on the percentage scale but scoring has no percentage")
        multiplier = self.scoring.percentage_multiplier or 1
        span = (high - low) * (multiplier if rules.scale == "percentage" else 1)
        if rules.reliable_change > span:
            problems.append(f"change.reliable_change {rules.reliable_change} exceeds the range")
        if rules.caseness_min is not None and not low < rules.caseness_min <= high:
            problems.append(f"change.caseness_min {rules.caseness_min} is outside the totals")
        if rules.caseness_min is not None and rules.higher_is_better:
            problems.append("change.caseness_min is defined only where a higher total is worse")
        return problems

    def _check_bands(self) -> list[str]:
        low, high = self.total_range
        expected = low
        problems = []
        for band in sorted(self.bands, key=lambda b: b.min):
            if band.min > band.max:
                problems.append(f"band {band.id!r} has min above max")
            if band.min > expected:
                problems.append(f"bands leave a gap at total {expected} (before band {band.id!r})")
            elif band.min < expected:
                problems.append(f"bands overlap at total {band.min} (band {band.id!r})")
            expected = band.max + 1
        if expected != high + 1:
            problems.append(f"bands end at {expected - 1} but totals reach {high}")
        return problems

    def _check_text(self) -> list[str]:
        texts = [("title", self.title), ("short_title", self.short_title), ("stem", self.stem)]
        texts += [(f"item {i.id!r}", i.text) for i in self.items]
        texts += [
            (f"option {o.label!r}", word)
            for option_set in self.option_sets.values()
            for o in option_set.options
            for word in (o.label, *o.synonyms)
        ]
        problems = []
        for where, text in texts:
            bad = non_gsm7_characters(text)
            if bad:
                problems.append(f"{where} has characters SMS cannot send plainly: {bad!r}")
            if re.search(r"[\^{}\\\[\]~|€]", text):
                problems.append(f"{where} uses GSM-7 extension characters (they cost double)")
        return problems


def _reads_total(rule: object) -> bool:
    """True when a rule needs the total or band, which exist only at the end."""
    if isinstance(rule, r.TotalBelow | r.TotalAtLeast | r.BandIn):
        return True
    if isinstance(rule, r.AnyOf):
        return any(_reads_total(x) for x in rule.any)
    if isinstance(rule, r.AllOf):
        return any(_reads_total(x) for x in rule.all)
    return False
