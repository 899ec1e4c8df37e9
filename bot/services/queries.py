"""Reading a practice's records, for the API and the staff pages: one unit of work each.

Everything is scoped to one practice: another practice's ids are ``NotFound``
exactly as ids that do not exist. Each function returns the records (detached
rows); the web layer shapes them (``bot/schemas``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from bot.errors import NotFound
from bot.flows.alert_why import Why, alert_why
from bot.instruments import Catalogue
from bot.schemas.fields import iso
from bot.services import alert_reach
from bot.services.enrolment import get_patient, looks_like_id
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    Alert,
    AlertAction,
    Answer,
    Invitation,
    Message,
    Patient,
    Practice,
    ResultRecord,
    StaffUser,
)

__all__ = ["iso"]  # bot.fhir and the simulator write times with it

SEVERITY_ORDER = {"urgent": 0, "routine": 1, "information": 2}


def _read(rt: Runtime):
    return transaction(rt.engine, read_only=True)


def patient(rt: Runtime, practice: Practice, patient_id: str) -> Patient:
    with _read(rt) as session:
        return get_patient(session, practice, patient_id)


def invitations_of(rt: Runtime, practice: Practice, patient_id: str) -> list[Invitation]:
    with _read(rt) as session:
        person = get_patient(session, practice, patient_id)
        return list(
            session.exec(
                select(Invitation)
                .where(Invitation.patient_id == person.id)
                .order_by(col(Invitation.due_at), col(Invitation.id))
            ).all()
        )


def _results(session: Session, patient_id: str, *, newest_first: bool = False):
    order = col(ResultRecord.finished_at).desc() if newest_first else col(ResultRecord.finished_at)
    return list(
        session.exec(
            select(ResultRecord)
            .where(ResultRecord.patient_id == patient_id)
            .order_by(order, col(ResultRecord.id))
        ).all()
    )


def results_of(rt: Runtime, practice: Practice, patient_id: str) -> list[ResultRecord]:
    with _read(rt) as session:
        return _results(session, get_patient(session, practice, patient_id).id)


def alerts_of(rt: Runtime, practice: Practice, status: str | None) -> list[Alert]:
    with _read(rt) as session:
        query = select(Alert).where(Alert.practice_id == practice.id)
        if status:
            query = query.where(Alert.status == status)
        return list(session.exec(query.order_by(col(Alert.created_at).desc(), col(Alert.id))).all())


def messages_of(
    rt: Runtime, practice: Practice, patient_id: str | None, *, limit: int = 500
) -> list[Message]:
    """The latest ``limit`` messages, oldest first (a long log loses its start, not its end)."""
    with _read(rt) as session:
        query = select(Message).where(Message.practice_id == practice.id)
        if patient_id is not None:
            person = get_patient(session, practice, patient_id)
            query = query.where(Message.patient_id == person.id)
        # at one instant an inbound text comes before the replies to it ("inbound" < "outbound")
        rows = session.exec(
            query.order_by(
                col(Message.created_at).desc(),
                col(Message.direction).desc(),
                col(Message.position).desc(),
            ).limit(limit)
        ).all()
        return list(reversed(rows))


def get_alert(session: Session, practice: Practice, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id) if looks_like_id(alert_id) else None
    if alert is None or alert.practice_id != practice.id:
        raise NotFound(alert_id)
    return alert


def answer_behind_alert(session: Session, alert: Alert) -> Answer | None:
    """The answer now recorded at the alert's question, if any.

    Shown beside the patient's words: "yes" raised the alert, "0" is what was
    recorded afterwards; a clinician must see both.
    """
    if alert.item is None or alert.invitation_id is None:
        return None
    return session.exec(
        select(Answer)
        .where(Answer.invitation_id == alert.invitation_id)
        .where(Answer.item == alert.item)
        .where(Answer.superseded == False)  # noqa: E712
        .order_by(col(Answer.answered_at).desc(), col(Answer.id))
    ).first()


def option_label(catalogue: Catalogue, instrument: str, item: str, value: int) -> str | None:
    """The words of the option an answer chose ("Not at all"), if the instrument is known."""
    if instrument not in catalogue or item not in catalogue[instrument].item_ids:
        return None
    options = catalogue[instrument].options_for(item)
    return next((o.label for o in options if o.value == value), None)


def get_invitation(session: Session, practice: Practice, invitation_id: str) -> Invitation:
    invitation = session.get(Invitation, invitation_id) if looks_like_id(invitation_id) else None
    if invitation is None or invitation.practice_id != practice.id:
        raise NotFound(invitation_id)
    return invitation


# -- the staff pages ---------------------------------------------------------------------


@dataclass(frozen=True)
class AlertDetail:
    practice: Practice
    alert: Alert
    patient: Patient | None
    invitation: Invitation | None
    notices: list[alert_reach.NoticeView]
    history: list[tuple[alert_reach.HistoryEntry, StaffUser | None]]
    """The alert's history, oldest first, each entry with the member of staff who acted."""
    reached_nobody: bool
    acknowledged_by: str | None
    """The actor who acknowledged: ``user:<id>``, ``token:<id>``, or None."""
    acknowledged_by_user: StaffUser | None
    recorded: Answer | None
    """The answer now recorded at the alert's question (beside the patient's own words)."""
    why: Why
    """Why it was raised, in words."""


def alert_detail(rt: Runtime, practice_id: str, alert_id: str) -> AlertDetail:
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        alert = get_alert(session, practice, alert_id)
        notices = alert_reach.notices_of(session, [alert.id])[alert.id]
        history = [
            (entry, _staff_member(session, practice, entry.actor))
            for entry in alert_reach.history_of(session, alert.id, notices)
        ]
        return AlertDetail(
            practice=practice,
            alert=alert,
            patient=session.get(Patient, alert.patient_id),
            invitation=session.get(Invitation, alert.invitation_id)
            if alert.invitation_id
            else None,
            notices=notices,
            history=history,
            reached_nobody=alert.id in alert_reach.unreached_among(session, [alert.id]),
            acknowledged_by=alert.acknowledged_by,
            acknowledged_by_user=_staff_member(session, practice, alert.acknowledged_by),
            recorded=answer_behind_alert(session, alert),
            why=alert_whys(session, rt.catalogue, [alert])[alert.id],
        )


# -- the alert inbox ----------------------------------------------------------------------

INBOX_STATES = ("open", "acknowledged", "all")
INBOX_SEVERITIES = ("all", *SEVERITY_ORDER)


@dataclass(frozen=True)
class AlertInbox:
    """The alerts inbox: urgent first, then oldest first, as filtered."""

    practice: Practice
    rows: list[tuple[Alert, Patient]]
    whys: dict[str, Why]
    notices: dict[str, list[alert_reach.NoticeView]]
    unreached: set[str]
    more: bool
    """Whether more alerts matched than were shown."""


def alert_inbox(
    rt: Runtime, practice_id: str, *, state: str = "open", severity: str = "all", limit: int = 100
) -> AlertInbox:
    """This practice's alerts in ``state`` (open, acknowledged or all) of ``severity`` (or
    all): urgent first, then the oldest first, so the one waiting longest is on top."""
    rank = case(SEVERITY_ORDER, value=col(Alert.severity), else_=len(SEVERITY_ORDER))
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        query = (
            select(Alert, Patient)
            .join(Patient, col(Patient.id) == col(Alert.patient_id))
            .where(Alert.practice_id == practice.id)
        )
        if state in ("open", "acknowledged"):
            query = query.where(Alert.status == state)
        if severity in SEVERITY_ORDER:
            query = query.where(Alert.severity == severity)
        found = session.exec(
            query.order_by(rank, col(Alert.created_at), col(Alert.id)).limit(limit + 1)
        ).all()
        rows = [(a, p) for a, p in found[:limit]]
        ids = [a.id for a, _p in rows]
        return AlertInbox(
            practice,
            rows,
            whys=alert_whys(session, rt.catalogue, [a for a, _p in rows]),
            notices={
                alert_id: alert_reach.latest_per_recipient(found_rows)
                for alert_id, found_rows in alert_reach.notices_of(session, ids).items()
            },
            unreached=alert_reach.unreached_among(session, ids),
            more=len(found) > limit,
        )


def alert_whys(session: Session, catalogue: Catalogue, alerts: list[Alert]) -> dict[str, Why]:
    """Why each alert was raised, in words (``bot.flows.alert_why``), in a few statements."""
    invitation_ids = sorted({a.invitation_id for a in alerts if a.invitation_id})
    instruments: dict[str, str] = {}
    values: dict[tuple[str, str], int] = {}
    results: dict[str, ResultRecord] = {}
    if invitation_ids:
        for invitation in session.exec(
            select(Invitation).where(col(Invitation.id).in_(invitation_ids))
        ).all():
            instruments[invitation.id] = invitation.instrument
        for answer in session.exec(
            select(Answer)
            .where(col(Answer.invitation_id).in_(invitation_ids))
            .where(Answer.superseded == False)  # noqa: E712
            .order_by(col(Answer.answered_at), col(Answer.id))
        ).all():
            values[(answer.invitation_id, answer.item)] = answer.value  # the latest wins
        for result in session.exec(
            select(ResultRecord)
            .where(col(ResultRecord.invitation_id).in_(invitation_ids))
            .order_by(col(ResultRecord.finished_at), col(ResultRecord.id))
        ).all():
            results[result.invitation_id] = result  # the last stage wins
    whys: dict[str, Why] = {}
    for alert in alerts:
        instrument_id = instruments.get(alert.invitation_id or "")
        result = results.get(alert.invitation_id or "")
        if alert.reason == "score" and result is not None:
            instrument_id = result.instrument
        instrument = catalogue.get(instrument_id) if instrument_id else None
        if instrument is not None and alert.item and alert.item not in instrument.item_ids:
            # a screen that went on to its full form: the item is in the other one
            instrument = next(
                (catalogue[i] for i in catalogue if alert.item in catalogue[i].item_ids), None
            )
        previous = None
        if alert.reason == "score" and result is not None:
            previous = session.exec(
                select(ResultRecord.total)
                .where(ResultRecord.patient_id == alert.patient_id)
                .where(ResultRecord.instrument == result.instrument)
                .where(col(ResultRecord.finished_at) < result.finished_at)
                .where(col(ResultRecord.total).is_not(None))
                .order_by(col(ResultRecord.finished_at).desc())
            ).first()
        whys[alert.id] = alert_why(
            flag=alert.flag,
            reason=alert.reason,
            instrument=instrument,
            item=alert.item,
            value=values.get((alert.invitation_id or "", alert.item or "")),
            patient_words=alert.patient_words,
            total=result.total if result is not None else None,
            band=result.band if result is not None else None,
            previous_total=previous,
        )
    return whys


def alert_actions(rt: Runtime, practice_id: str, alert_id: str) -> list[AlertAction]:
    """Every outcome recorded about the alert, oldest first."""
    with _read(rt) as session:
        alert = get_alert(session, _practice(session, practice_id), alert_id)
        return list(
            session.exec(
                select(AlertAction)
                .where(AlertAction.alert_id == alert.id)
                .order_by(col(AlertAction.at), col(AlertAction.id))
            ).all()
        )


def latest_scores(rt: Runtime, practice_id: str, patient_id: str) -> list[ResultRecord]:
    """The patient's latest scored result per instrument (the alert page's "last scores")."""
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
        latest: dict[str, ResultRecord] = {}
        for result in _results(session, person.id, newest_first=True):
            if result.total is not None and result.instrument not in latest:
                latest[result.instrument] = result
        return list(latest.values())


def _staff_member(session: Session, practice: Practice, actor: str | None) -> StaffUser | None:
    """The member of this practice's staff an audit actor (``user:<id>``) names, if any."""
    kind, _, ident = (actor or "").partition(":")
    if kind != "user":
        return None
    user = session.get(StaffUser, ident)
    return user if user is not None and user.practice_id == practice.id else None


def unreached_urgent_count(rt: Runtime, practice_id: str) -> int:
    """This practice's urgent alerts that have reached nobody (every staff page's banner)."""
    with _read(rt) as session:
        return alert_reach.unreached_count(session, practice_id)


@dataclass(frozen=True)
class HeaderCounts:
    """What every staff page's header shows: open urgent alerts, and those that reached nobody."""

    open_urgent: int
    unreached_urgent: int


def header_counts(rt: Runtime, practice_id: str) -> HeaderCounts:
    with _read(rt) as session:
        open_urgent = session.exec(
            select(func.count())
            .select_from(Alert)
            .where(Alert.practice_id == practice_id)
            .where(Alert.severity == "urgent")
            .where(Alert.status == "open")
        ).one()
        return HeaderCounts(int(open_urgent), alert_reach.unreached_count(session, practice_id))


@dataclass(frozen=True)
class PatientRecord:
    practice: Practice
    patient: Patient
    results: list[ResultRecord]
    """Newest first."""
    alerts: list[Alert]


def patient_record(rt: Runtime, practice_id: str, patient_id: str) -> PatientRecord:
    with _read(rt) as session:
        practice = _practice(session, practice_id)
        person = get_patient(session, practice, patient_id)
        alerts = session.exec(
            select(Alert)
            .where(Alert.practice_id == practice.id)
            .where(Alert.patient_id == person.id)
            .order_by(col(Alert.created_at).desc(), col(Alert.id))
        ).all()
        return PatientRecord(
            practice, person, _results(session, person.id, newest_first=True), list(alerts)
        )


def _practice(session: Session, practice_id: str) -> Practice:
    practice = session.get(Practice, practice_id)
    if practice is None:
        raise NotFound(practice_id)
    return practice
