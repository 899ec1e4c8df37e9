"""A patient's record as a clinician reads it: results in words, trends, follow-ups.

Read-only, one unit of work per call, scoped to one practice exactly as
``bot/services/queries.py`` (another practice's patient is ``NotFound``).
Returns plain dataclasses; the staff pages (``bot/web/patient_page.py``)
format times and draw the charts.

For each result: every question's text, the patient's own reply (the text
recorded with the answer), the option it was read as, missing questions as
missing (never 0), the flags with their reason, whether the total was
prorated, and the change since the previous scored result (reliable change
and recovery, ``bot/instruments/change.py``). Per instrument: baseline (the
first scored result) to latest, classified the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from bot.instruments import Catalogue, Instrument
from bot.instruments.change import Change, Scored, classify
from bot.instruments.record_summary import Previous, record_text
from bot.instruments.scoring import applicable
from bot.instruments.wording import band_label, flag_reason, option_words
from bot.services import queries
from bot.services.enrolment import get_patient
from bot.services.queries import _practice, _read
from bot.services.runtime import Runtime
from bot.store.models import Answer, Invitation, Patient, Practice, ResultRecord

# What a text's stored status means to a clinician (the provider's words vary)
DELIVERY_STATES = {
    "received": "received",
    "queued": "queued",
    "sending": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "not sent (cancelled)",
}
PENDING_STATUSES = ("pending", "active")
RECENT_FOLLOW_UPS = 10


@dataclass(frozen=True)
class AnswerLine:
    number: int
    item_id: str
    text: str
    scored: bool
    value: int | None
    """None when the question has no answer: shown as "missing", never as 0."""
    option: str | None
    reply: str | None
    """The patient's own words that gave the answer, when recorded."""
    asked: bool = True
    """False for a question the form skips (PHQ-9's difficulty question after all 0s)."""

    @property
    def missing(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class FlagLine:
    id: str
    severity: str
    reason: str


@dataclass(frozen=True)
class ResultView:
    id: str
    instrument: Instrument
    status: str
    finished_at: datetime
    total: int | None
    band: str | None
    band_label: str | None
    percentage: int | None
    prorated: bool
    answers: list[AnswerLine]
    flags: list[FlagLine]
    previous: ResultView | None
    """The previous scored result on the same instrument."""
    change: Change | None
    """From ``previous`` to this one."""
    record_text: str = ""

    @property
    def missing_count(self) -> int:
        return sum(1 for a in self.answers if a.scored and a.missing)


@dataclass(frozen=True)
class InstrumentTrend:
    instrument: Instrument
    results: list[ResultView]
    """Oldest first."""
    change: Change | None
    """Baseline (the first scored result) to the latest scored result."""

    @property
    def scored(self) -> list[ResultView]:
        return [r for r in self.results if r.total is not None]

    @property
    def baseline(self) -> ResultView | None:
        return self.scored[0] if self.scored else None

    @property
    def latest(self) -> ResultView | None:
        return self.scored[-1] if len(self.scored) > 1 else None


@dataclass(frozen=True)
class FollowUp:
    id: str
    instrument: str
    """The instrument's short title."""
    status: str
    due_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ClinicalRecord:
    practice: Practice
    patient: Patient
    trends: list[InstrumentTrend]
    pending: list[FollowUp]
    """Not yet sent or still being answered, soonest first."""
    recent: list[FollowUp]
    """Finished, expired or cancelled, newest first."""


@dataclass(frozen=True)
class TranscriptLine:
    direction: str
    body: str
    at: datetime
    state: str
    error_code: int | None


@dataclass(frozen=True)
class Transcript:
    practice: Practice
    patient: Patient
    lines: list[TranscriptLine]


def clinical_record(
    rt: Runtime, practice_id: str, patient_id: str, catalogue: Catalogue
) -> ClinicalRecord:
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
        results = session.exec(
            select(ResultRecord)
            .where(ResultRecord.patient_id == person.id)
            .order_by(col(ResultRecord.finished_at), col(ResultRecord.id))
        ).all()
        replies = _replies(session, [r.invitation_id for r in results])
        trends: dict[str, list[ResultView]] = {}
        for result in results:
            if result.instrument not in catalogue:
                continue  # an instrument no longer loaded: its raw record is in the API
            instrument = catalogue[result.instrument]
            series = trends.setdefault(instrument.id, [])
            previous = next((r for r in reversed(series) if r.total is not None), None)
            series.append(
                _view(
                    instrument,
                    result,
                    replies.get(result.invitation_id, {}),
                    previous,
                    ZoneInfo(practice.timezone),
                )
            )
        invitations = session.exec(
            select(Invitation)
            .where(Invitation.patient_id == person.id)
            .order_by(col(Invitation.due_at), col(Invitation.id))
        ).all()

        def follow_up(i: Invitation) -> FollowUp:
            title = (
                catalogue[i.instrument].short_title if i.instrument in catalogue else i.instrument
            )
            return FollowUp(i.id, title, i.status, i.due_at, i.finished_at)

        pending = [follow_up(i) for i in invitations if i.status in PENDING_STATUSES]
        recent = [follow_up(i) for i in reversed(invitations) if i.status not in PENDING_STATUSES]
        return ClinicalRecord(
            practice=practice,
            patient=person,
            trends=[_trend(catalogue[k], v) for k, v in trends.items()],
            pending=pending,
            recent=recent[:RECENT_FOLLOW_UPS],
        )


def transcript(rt: Runtime, practice_id: str, patient_id: str, *, limit: int = 1000) -> Transcript:
    """Every text to and from the patient, oldest first, with its delivery state."""
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
    rows = queries.messages_of(rt, practice, person.id, limit=limit)
    lines = [
        TranscriptLine(
            direction=m.direction,
            body=m.body,
            at=(m.sent_at or m.created_at) if m.direction == "outbound" else m.created_at,
            state=DELIVERY_STATES.get(m.status, m.status),
            error_code=m.error_code,
        )
        for m in rows
    ]
    return Transcript(practice, person, lines)


def _replies(session: Session, invitation_ids: list[str]) -> dict[str, dict[str, str]]:
    """The patient's words behind each current answer: invitation -> item -> text."""
    if not invitation_ids:
        return {}
    rows = session.exec(
        select(Answer)
        .where(col(Answer.invitation_id).in_(invitation_ids))
        .where(Answer.superseded == False)  # noqa: E712
        .order_by(col(Answer.answered_at), col(Answer.id))
    ).all()
    words: dict[str, dict[str, str]] = {}
    for answer in rows:  # the latest answer to an item wins
        words.setdefault(answer.invitation_id, {})[answer.item] = answer.raw_text
    return words


def _view(
    instrument: Instrument,
    result: ResultRecord,
    replies: dict[str, str],
    previous: ResultView | None,
    zone: ZoneInfo,
) -> ResultView:
    answers: dict[str, int] = json.loads(result.answers_json)
    flags: list[str] = json.loads(result.flags_json)

    lines = [
        AnswerLine(
            number=position,
            item_id=item.id,
            text=item.text,
            scored=item.scored,
            value=answers.get(item.id),
            option=option_words(instrument, item.id, answers[item.id])
            if item.id in answers
            else None,
            reply=replies.get(item.id) if item.id in answers else None,
            asked=item.id in answers or applicable(instrument, item.id, answers),
        )
        for position, item in enumerate(instrument.items, start=1)
    ]
    severities = {f.id: f.severity for f in instrument.flags}
    flag_lines = [
        FlagLine(
            f,
            severities.get(f, "information"),
            flag_reason(instrument, f, answers, result.total, result.band),
        )
        for f in flags
    ]
    change = (
        classify(
            instrument,
            Scored(previous.total, previous.prorated),
            Scored(result.total, result.prorated),
        )
        if previous is not None
        else None
    )
    text = record_text(
        instrument,
        on=_day(result.finished_at, zone),
        total=result.total,
        band=result.band,
        answers=answers,
        prorated=result.prorated,
        previous=Previous(previous.total, _day(previous.finished_at, zone))
        if previous is not None and previous.total is not None
        else None,
        change=change,
    )
    return ResultView(
        id=result.id,
        instrument=instrument,
        status=result.status,
        finished_at=result.finished_at,
        total=result.total,
        band=result.band,
        band_label=band_label(instrument, result.band),
        percentage=result.percentage,
        prorated=result.prorated,
        answers=lines,
        flags=flag_lines,
        previous=previous,
        change=change,
        record_text=text,
    )


def _day(moment: datetime, zone: ZoneInfo) -> date:
    """The date in the practice's time zone (a result at 00:30 BST is that day's)."""
    return moment.astimezone(zone).date()


def _trend(instrument: Instrument, results: list[ResultView]) -> InstrumentTrend:
    scored = [r for r in results if r.total is not None]
    change = (
        classify(
            instrument,
            Scored(scored[0].total, scored[0].prorated),
            Scored(scored[-1].total, scored[-1].prorated),
        )
        if len(scored) > 1
        else None
    )
    return InstrumentTrend(instrument, results, change)
