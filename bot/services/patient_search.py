"""Finding a practice's patients: by name, NHS number or the last digits of the mobile.

One read per call, scoped to the practice. What staff type decides the search:
digits (spaces ignored) are an NHS number when there are ten of them, and the end
of a mobile number from three digits up (``07700 900123``, ``900123`` and ``123``
all find +447700900123); anything else is the start of the name or of the
surname, in any case and without accents ("bo", "sample" and "bo sam" all find
Bo Sample). Results come a page at a time, by name.

Every search is an index range on the patient's search keys (see ``Patient``
and migration 0009), so a page costs about the same with 10,000 patients as
with 10: two statements, the count and the page (one when nothing matches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, func, union
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
    ranges = _ranges(query)
    if ranges is None:  # the whole list: the practice's patients in name_key order
        counted = select(func.count()).select_from(Patient)
        counted = counted.where(col(Patient.practice_id) == practice_id)
        base = select(Patient).where(col(Patient.practice_id) == practice_id)
    else:
        ids = matching_ids(practice_id, ranges)
        counted = select(func.count()).select_from(ids.subquery())
        base = select(Patient).where(col(Patient.id).in_(ids))
    with transaction(rt.engine, read_only=True) as session:
        total = int(session.exec(counted).one())
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = []
        if total:
            rows = session.exec(
                base.order_by(col(Patient.name_key), col(Patient.id))
                .offset((page - 1) * PAGE_SIZE)
                .limit(PAGE_SIZE)
            ).all()
        return PatientPage(list(rows), total, page, pages, query)


def matching_ids(practice_id: str, ranges: list):
    """The ids of the practice's patients in any of ``ranges``: one union of index ranges.

    The page then looks its rows up by id. Not one ``OR`` in the page's own query,
    nor the practice's id beside it there: either lets SQLite walk the whole
    practice in name order instead (the index that avoids sorting), knowing
    nothing of how few rows match.
    """
    if not ranges:  # nothing that could match
        return select(Patient.id).where(col(Patient.id).is_(None))
    return union(
        *(select(Patient.id).where(col(Patient.practice_id) == practice_id, r) for r in ranges)
    )


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
