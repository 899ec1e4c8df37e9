"""A practice's protocols: named schedules of questionnaires, used when consultations are made.

Protocols are templates: a consultation's invitations are made from its
protocol when the consultation is registered, so editing or deleting a
protocol changes future consultations only. Every practice starts with the
defaults in ``bot/protocols.yaml``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.errors import InputError, NotFound
from bot.instruments import Catalogue
from bot.schemas.fields import PROTOCOL_NAME
from bot.schemas.scheduling import ProtocolCreate, ProtocolUpdate, ScheduleStep
from bot.services import audit
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import Practice, Protocol

DEFAULT_PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols.yaml"


def default_protocols() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PROTOCOLS.read_text(encoding="utf-8"))


def add_default_protocols(session: Session, practice: Practice, now: datetime) -> None:
    for key, protocol in default_protocols().items():
        session.add(
            Protocol(
                practice_id=practice.id,
                name=key,
                title=protocol["title"],
                schedule_json=json.dumps(protocol["schedule"]),
                created_at=now,
            )
        )


def in_catalogue(steps: list[ScheduleStep], catalogue: Catalogue) -> list[ScheduleStep]:
    """The steps, if each names an instrument this app has (files may add more)."""
    for index, step in enumerate(steps):
        if step.instrument not in catalogue:
            where = f"schedule[{index}].instrument"
            raise InputError(where, f"{where} must be one of {', '.join(catalogue)}")
    return steps


def _stored(steps: list[ScheduleStep]) -> str:
    return json.dumps([{"instrument": s.instrument, "after": s.after} for s in steps])


def protocol_steps(session: Session, practice: Practice, name: str) -> list[dict[str, str]]:
    """A protocol's schedule, for a consultation registered with it (a 422 when unknown)."""
    protocol = session.exec(
        select(Protocol).where(Protocol.practice_id == practice.id).where(Protocol.name == name)
    ).first()
    if protocol is None:
        names = session.exec(select(Protocol.name).where(Protocol.practice_id == practice.id)).all()
        raise InputError("protocol", f"protocol must be one of {', '.join(sorted(names))}")
    return json.loads(protocol.schedule_json)


def _locked(session: Session, practice: Practice, name: str) -> Protocol:
    protocol = None
    if re.fullmatch(PROTOCOL_NAME, name):
        protocol = session.exec(
            select(Protocol)
            .where(Protocol.practice_id == practice.id)
            .where(Protocol.name == name)
            .with_for_update()
        ).first()
    if protocol is None:
        raise NotFound(name)
    return protocol


def list_protocols(rt: Runtime, practice: Practice) -> list[Protocol]:
    with transaction(rt.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Protocol)
                .where(Protocol.practice_id == practice.id)
                .order_by(col(Protocol.name))
            ).all()
        )


def add_protocol(
    rt: Runtime, practice: Practice, new: ProtocolCreate, *, now: datetime, actor: str
) -> Protocol:
    protocol = Protocol(
        practice_id=practice.id,
        name=new.name,
        title=new.title,
        schedule_json=_stored(in_catalogue(new.schedule, rt.catalogue)),
        created_at=now,
    )
    with transaction(rt.engine) as session:
        try:
            # the unique constraint decides, so two requests for one name get one 422
            with session.begin_nested():
                session.add(protocol)
        except IntegrityError:
            raise InputError(
                "name", f"this practice already has a protocol named {new.name}"
            ) from None
        _audit(session, practice, actor, "protocol.created", protocol.id, now)
    return protocol


def change_protocol(
    rt: Runtime,
    practice: Practice,
    name: str,
    changes: ProtocolUpdate,
    *,
    now: datetime,
    actor: str,
) -> Protocol:
    """A protocol's new title or schedule. Consultations already registered keep theirs."""
    if changes.schedule is not None:
        in_catalogue(changes.schedule, rt.catalogue)
    with transaction(rt.engine) as session:
        protocol = _locked(session, practice, name)
        if changes.name is not None and changes.name != protocol.name:
            raise InputError(
                "name",
                "name cannot be changed: a protocol keeps its name; create a new one instead",
            )
        if changes.title is None and changes.schedule is None:
            raise InputError("body", "the body must give title, schedule or both")
        if changes.title is not None:
            protocol.title = changes.title
        if changes.schedule is not None:
            protocol.schedule_json = _stored(changes.schedule)
        _audit(session, practice, actor, "protocol.updated", protocol.id, now)
    return protocol


def remove_protocol(
    rt: Runtime, practice: Practice, name: str, *, now: datetime, actor: str
) -> None:
    """Remove a protocol; consultations registered with it keep their invitations."""
    with transaction(rt.engine) as session:
        protocol = _locked(session, practice, name)
        _audit(session, practice, actor, "protocol.deleted", protocol.id, now)
        session.delete(protocol)


def _audit(
    session: Session, practice: Practice, actor: str, action: str, subject_id: str, now: datetime
) -> None:
    audit.record(
        session,
        practice_id=practice.id,
        actor=actor,
        action=action,
        subject_type="protocol",
        subject_id=subject_id,
        now=now,
    )
