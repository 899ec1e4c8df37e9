"""Questionnaires as data: schema, rules, scoring and the shipped instrument files."""

from bot.instruments.loader import (
    Catalogue,
    InstrumentFileError,
    builtin_catalogue,
    load_catalogue,
    load_file,
)
from bot.instruments.schema import Instrument
from bot.instruments.scoring import InvalidAnswer, Score, score

__all__ = [
    "Catalogue",
    "Instrument",
    "InstrumentFileError",
    "InvalidAnswer",
    "Score",
    "builtin_catalogue",
    "load_catalogue",
    "load_file",
    "score",
]
