"""Finding a practice's patients: by name, NHS number or the last digits of the mobile.

One read per call, scoped to the practice. What staff type decides the search:
digits (spaces ignored) are an NHS number when there are ten of them, and the end
of a mobile number from three digits up (``07700 900123``, ``900123`` and ``123``
all find +447700900123); anything else is part of a name, in any case. Results
come a page at a time, by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlmodel import col, select

from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Patient

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
    condition = _condition(query)
    with transaction(rt.engine, read_only=True) as session:
        base = select(Patient).where(col(Patient.practice_id) == practice_id)
        counted = select(func.count()).select_from(Patient)
        counted = counted.where(col(Patient.practice_id) == practice_id)
        if condition is not None:
            base, counted = base.where(condition), counted.where(condition)
        total = int(session.exec(counted).one())
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = session.exec(
            base.order_by(func.lower(col(Patient.name)), col(Patient.id))
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        ).all()
        return PatientPage(list(rows), total, page, pages, query)


def _condition(query: str):
    if not query:
        return None
    digits = re.sub(r"[\s-]", "", query)
    if digits.isdigit():
        found = []
        if len(digits) == 10:
            found.append(col(Patient.nhs_number) == digits)
        if len(digits) >= MIN_PHONE_DIGITS:
            national = digits[1:] if digits.startswith("0") else digits  # 07700... -> 7700...
            found.append(col(Patient.phone).endswith(national, autoescape=True))
        return or_(*found) if found else col(Patient.id).is_(None)  # too few digits: none
    return func.lower(col(Patient.name)).contains(query.lower(), autoescape=True)
