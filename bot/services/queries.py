"""Read models for the API and pages: plain dicts, scoped to one practice."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from bot.instruments import Catalogue
from bot.services.enrolment import NotFound, get_patient, looks_like_id
from bot.store.models import (
    Alert,
    Answer,
    Consultation,
    Invitation,
    Message,
    Patient,
    Practice,
    Protocol,
    ResultRecord,
)


def iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def patient_json(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "name": patient.name,
        "phone": patient.phone,
        "nhs_number": patient.nhs_number,
        "date_of_birth": patient.date_of_birth.isoformat() if patient.date_of_birth else None,
        "language": patient.language,
        "opted_out": patient.opted_out,
        "created_at": iso(patient.created_at),
    }


def invitation_json(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "patient_id": invitation.patient_id,
        "consultation_id": invitation.consultation_id,
        "instrument": invitation.instrument,
        "due_at": iso(invitation.due_at),
        "status": invitation.status,
        "started_at": iso(invitation.started_at),
        "finished_at": iso(invitation.finished_at),
    }


def result_json(result: ResultRecord) -> dict[str, Any]:
    return {
        "id": result.id,
        "invitation_id": result.invitation_id,
        "instrument": result.instrument,
        "instrument_version": result.instrument_version,
        "status": result.status,
        "completed_at": iso(result.finished_at) if result.status == "completed" else None,
        "finished_at": iso(result.finished_at),
        "total": result.total,
        "band": result.band,
        "percentage": result.percentage,
        "prorated": result.prorated,
        "answers": json.loads(result.answers_json),
        "flags": json.loads(result.flags_json),
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "patient_id": alert.patient_id,
        "invitation_id": alert.invitation_id,
        "flag": alert.flag,
        "severity": alert.severity,
        "reason": alert.reason,
        "item": alert.item,
        "patient_words": alert.patient_words,
        "status": alert.status,
        "created_at": iso(alert.created_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "patient_id": message.patient_id,
        "direction": message.direction,
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "created_at": iso(message.created_at),
    }


def invitations_of(session: Session, practice: Practice, patient_id: str) -> list[dict[str, Any]]:
    patient = get_patient(session, practice, patient_id)
    rows = session.exec(
        select(Invitation)
        .where(Invitation.patient_id == patient.id)
        .order_by(col(Invitation.due_at), col(Invitation.id))
    ).all()
    return [invitation_json(i) for i in rows]


def results_of(session: Session, practice: Practice, patient_id: str) -> list[dict[str, Any]]:
    patient = get_patient(session, practice, patient_id)
    rows = session.exec(
        select(ResultRecord)
        .where(ResultRecord.patient_id == patient.id)
        .order_by(col(ResultRecord.finished_at), col(ResultRecord.id))
    ).all()
    return [result_json(r) for r in rows]


def alerts_of(session: Session, practice: Practice, status: str | None) -> list[dict[str, Any]]:
    query = select(Alert).where(Alert.practice_id == practice.id)
    if status:
        query = query.where(Alert.status == status)
    rows = session.exec(query.order_by(col(Alert.created_at).desc(), col(Alert.id))).all()
    return [alert_json(a) for a in rows]


def messages_of(
    session: Session, practice: Practice, patient_id: str | None, *, limit: int = 500
) -> list[dict[str, Any]]:
    """The latest ``limit`` messages, oldest first (a long log loses its start, not its end)."""
    query = select(Message).where(Message.practice_id == practice.id)
    if patient_id:
        patient = get_patient(session, practice, patient_id)
        query = query.where(Message.patient_id == patient.id)
    # at one instant an inbound text comes before the replies to it ("inbound" < "outbound")
    rows = session.exec(
        query.order_by(
            col(Message.created_at).desc(),
            col(Message.direction).desc(),
            col(Message.position).desc(),
        ).limit(limit)
    ).all()
    return [message_json(m) for m in reversed(rows)]


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


def consultation_json(consultation: Consultation, invitations: list[Invitation]) -> dict[str, Any]:
    return {
        "id": consultation.id,
        "patient_id": consultation.patient_id,
        "occurred_at": iso(consultation.occurred_at),
        "protocol": consultation.protocol,
        "invitations": [invitation_json(i) for i in invitations],
    }


def invitations_of_consultation(session: Session, consultation: Consultation) -> list[Invitation]:
    return list(
        session.exec(
            select(Invitation)
            .where(Invitation.consultation_id == consultation.id)
            .order_by(col(Invitation.due_at), col(Invitation.id))
        ).all()
    )


def protocol_json(protocol: Protocol) -> dict[str, Any]:
    return {
        "name": protocol.name,
        "title": protocol.title,
        "schedule": json.loads(protocol.schedule_json),
        "created_at": iso(protocol.created_at),
    }


def protocols_of(session: Session, practice: Practice) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Protocol).where(Protocol.practice_id == practice.id).order_by(col(Protocol.name))
    ).all()
    return [protocol_json(p) for p in rows]


def practice_settings_json(practice: Practice) -> dict[str, Any]:
    """The practice as its API token sees it: who it is, and the settings it may change."""
    return {
        "id": practice.id,
        "name": practice.name,
        "sms_number": practice.sms_number,
        "timezone": practice.timezone,
        "nation": practice.nation,
        "send_window_start": practice.send_window_start,
        "send_window_end": practice.send_window_end,
        "working_days": practice.working_days.split(),
        "reminder_after_hours": practice.reminder_after_hours,
        "max_reminders": practice.max_reminders,
        "expire_after_days": practice.expire_after_days,
        "invitation_valid_days": practice.invitation_valid_days,
        "escalate_after_minutes": practice.escalate_after_minutes,
        "escalate_every_minutes": practice.escalate_every_minutes,
        "contact_phone": practice.contact_phone,
        "contact_email": practice.contact_email,
    }


def instruments_json(catalogue: Catalogue) -> list[dict[str, Any]]:
    return [
        {
            "id": instrument.id,
            "title": instrument.title,
            "short_title": instrument.short_title,
            "version": instrument.version,
            "items": len(instrument.items),
            "scored_items": len(instrument.scored_item_ids),
            "languages": list(instrument.languages),
            "licence": instrument.licence,
        }
        for instrument in catalogue.values()
    ]
