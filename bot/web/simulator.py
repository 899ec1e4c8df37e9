"""/simulator: play a demo patient's phone in the browser.

Only with the local SMS gateway (never next to real Twilio traffic). Texts
typed here take exactly the webhook's path (``handle_inbound``), and the
bot's texts are read back from the message log, as a phone would show them.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, jsonify, render_template, request
from sqlmodel import col, select

from bot.services.dispatch import start_now
from bot.services.inbound import InboundSms, handle_inbound
from bot.services.queries import iso
from bot.store.db import transaction
from bot.store.models import Conversation, Invitation, Message, Patient, Practice
from bot.web import context

bp = Blueprint("simulator", __name__, url_prefix="/simulator")


@bp.before_request
def _local_gateway_only() -> None:
    if context.runtime().settings.sms_gateway != "local":
        abort(404)


def _patient(session, patient_id: str) -> tuple[Patient, Practice]:
    patient = session.get(Patient, patient_id or "")
    if patient is None:
        abort(404)
    practice = session.get(Practice, patient.practice_id)
    return patient, practice


@bp.get("")
def page() -> str:
    with transaction(context.runtime().engine, read_only=True) as session:
        rows = session.exec(
            select(Patient, Practice)
            .join(Practice, Practice.id == Patient.practice_id)
            .order_by(col(Practice.name), col(Patient.name))
        ).all()
        patients = [
            {
                "id": p.id,
                "label": f"{p.name} ({p.phone}) at {pr.name}",
                "practice": pr.name,
                "sms_number": pr.sms_number,
            }
            for p, pr in rows
        ]
    instruments = [{"id": i.id, "title": i.title} for i in context.runtime().catalogue.values()]
    return render_template("simulator.html", patients=patients, instruments=instruments)


@bp.get("/messages")
def messages():
    with transaction(context.runtime().engine, read_only=True) as session:
        patient, _ = _patient(session, request.args.get("patient_id", ""))
        rows = session.exec(
            select(Message)
            .where(Message.patient_id == patient.id)
            .order_by(col(Message.created_at), col(Message.direction), col(Message.position))
        ).all()
        active = session.exec(
            select(Conversation)
            .where(Conversation.patient_id == patient.id)
            .where(Conversation.active == True)  # noqa: E712
        ).first()
        instrument = None
        if active is not None:
            invitation = session.get(Invitation, active.invitation_id)
            instrument = invitation.instrument if invitation else None
        return jsonify(
            messages=[
                {
                    "id": m.id,
                    "direction": m.direction,
                    "body": m.body,
                    "status": m.status,
                    "created_at": iso(m.created_at),
                }
                for m in rows
            ],
            active=active is not None,
            instrument=instrument,
            opted_out=patient.opted_out,
        )


@bp.post("/start")
def start():
    data = request.get_json(silent=True) or {}
    instrument = data.get("instrument")
    if instrument not in context.runtime().catalogue:
        return jsonify(error="choose a questionnaire"), 422
    now = context.now()
    with transaction(context.runtime().engine) as session:
        patient, _ = _patient(session, data.get("patient_id", ""))
        if patient.opted_out:
            return jsonify(error="this patient has opted out: text START first"), 409
        invitation = Invitation(
            practice_id=patient.practice_id,
            patient_id=patient.id,
            instrument=instrument,
            continue_if_positive=bool(data.get("continue_if_positive")),
            due_at=now,
            created_at=now,
        )
        session.add(invitation)
    # The demo starts at once, even outside the practice's send window.
    outcome = start_now(context.runtime(), invitation.id, now)
    if outcome == "waiting":
        # leave nothing queued behind the open questionnaire in a demo
        with transaction(context.runtime().engine) as session:
            row = session.get(Invitation, invitation.id)
            if row is not None:
                row.status = "cancelled"
                row.finished_at = now
    return jsonify({"started": int(outcome == "started"), "outcome": outcome}), 201


@bp.post("/send")
def send():
    data = request.get_json(silent=True) or {}
    text = data.get("text")
    if not isinstance(text, str):
        return jsonify(error="text is required"), 422
    with transaction(context.runtime().engine, read_only=True) as session:
        patient, practice = _patient(session, data.get("patient_id", ""))
        sms = InboundSms(
            sid=f"SM{uuid.uuid4().hex}",
            from_=patient.phone,
            to=practice.sms_number,
            body=text,
        )
    outcome = handle_inbound(context.runtime(), sms, context.now())
    return jsonify(replies=outcome.replies)
