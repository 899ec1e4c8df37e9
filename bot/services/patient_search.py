"""Finding a practice's patients: by name, NHS number or the last digits of the mobile.

One read per call, scoped to the practice. What staff type decides the search:
digits (spaces ignored) are an NHS number when there are ten of them, and the end
of a mobile number from three digits up (``07700 900123``, ``900123`` and ``123``
all find +447700900123); anything else is the start of the name or of the
surname, in any case and without accents ("bo", "sample" and "bo sam" all find
Bo Sample). Results come a page at a time, by name.

Every search is an index range on the patient's search keys (see ``Patient``
and migration 0009), so a page costs the same with 10,000 patients as with 10:
two statements, the count and the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, func, union_all
from sqlmodel import col, select

from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Patient, patient_search_keys

PAGE_SIZE = 25
MAX_QUERY = 120
MIN_PHONE_DIGITS = 3


@dataclass(frozen=True)
class PatientPage:
    patients: list[Patient]
    total: int
    page: int
    pages: int
    query: str


def search(rt: Runtime, practice_id: str, query: str = "", page: int = 1) -> PatientPage:
    """The practice's patients matching ``query``, page ``page`` (from 1) of ``PAGE_SIZE``."""
    query = " ".join(query.split())[:MAX_QUERY]
    found = matching(practice_id, query)
    with transaction(rt.engine, read_only=True) as session:
        base = select(Patient).where(col(Patient.practice_id) == practice_id)
        counted = select(func.count()).select_from(Patient)
        counted = counted.where(col(Patient.practice_id) == practice_id)
        if found is not None:
            base, counted = base.where(found), counted.where(found)
        total = int(session.exec(counted).one())
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = session.exec(
            base.order_by(col(Patient.name_key), col(Patient.id))
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        return PatientPage(list(rows), total, page, pages, query)


def matching(practice_id: str, query: str):
    """``Patient.id IN (...)`` for a search, or None for the whole list.

    Each way of matching is its own index range, the ids of all of them one
    union: a single ``OR`` lets SQLite walk the whole practice in name order
    instead (it prefers the index that avoids sorting, and knows nothing of how
    few rows match).
    """
    ranges = _ranges(query)
    if ranges is None:
        return None
    if not ranges:
        return col(Patient.id).is_(None)  # nothing that could match
    ids = union_all(
        *(select(Patient.id).where(col(Patient.practice_id) == practice_id, r) for r in ranges)
    )
    return col(Patient.id).in_(ids)


def _ranges(query: str) -> list | None:
    if not query:
        return None
    digits = re.sub(r"[\s-]", "", query)
    if digits.isdigit():
        found = []
        if len(digits) == 10:
            found.append(col(Patient.nhs_number) == digits)
        if len(digits) >= MIN_PHONE_DIGITS:
            national = digits[1:] if digits.startswith("0") else digits  # 07700... -> 7700...
            found.append(_starts(col(Patient.phone_key), national[::-1]))
        return found  # too few digits: none
    key = patient_search_keys(query, "")["name_key"]
    if not key:
        return []  # punctuation only: nothing to look for
    return [_starts(col(Patient.name_key), key), _starts(col(Patient.family_key), key)]


def _starts(column, prefix: str):
    """``column`` starts with ``prefix``, as an index range (the keys compare byte by byte)."""
    return and_(column >= prefix, column < prefix + "\U0010ffff")
