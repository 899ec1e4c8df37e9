"""What became of each notice about an urgent alert, and when an urgent alert has reached nobody.

The one definition, as SQL, used by the staff banner and lists, ``/healthz``
and the fallback in ``alert_notices``:

A notice's **delivery state** comes from its own status and, for a text, the
delivery report on its message-log row (``/sms/status`` updates that row):

=========== ===============================================================
queued      waiting to be sent, or waiting to be tried again after a failure
sending     handed to the mail server or the SMS gateway, outcome not yet known
sent        accepted by the mail server, or by the SMS gateway with no report
            of failure since
delivered   a text whose delivery report says it reached the phone
failed      refused, or a text reported ``failed`` or ``undelivered``
cancelled   not sent: the alert was acknowledged first
=========== ===============================================================

An urgent alert **has reached nobody** while it is open and none of its
notices (to any member of staff or to the practice's contact e-mail) is
``sent`` or ``delivered``. A notice still queued, sending, or waiting to be
retried has not reached anyone yet, so a new alert counts until its first
notice goes, and one whose notices all failed counts again.

An alert **awaits the fallback** when, besides, it has been notified, has not
fallen back yet, and has no notice queued or sending: everything tried has
failed for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_
from sqlmodel import Session, col, select

from bot.store.models import Alert, AlertNotification, AuditEvent, Message, StaffUser

URGENT = "urgent"
OPEN = "open"

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"
REACHED = (SENT, DELIVERED)
IN_FLIGHT = (QUEUED, SENDING)

DELIVERED_REPORTS = ("delivered", "read")
FAILED_REPORTS = ("failed", "undelivered", "canceled")
"""Twilio's final statuses for a text that did not reach the phone."""


def delivery_state() -> ColumnElement[str]:
    """A notice's delivery state, over ``alert_notification`` outer-joined to ``message``."""
    status = col(AlertNotification.status)
    report = col(Message.status)
    return case(
        (status.in_(("queued", "retry")), QUEUED),
        (status == "sending", SENDING),
        (and_(status == "sent", report.in_(DELIVERED_REPORTS)), DELIVERED),
        (and_(status == "sent", report.in_(FAILED_REPORTS)), FAILED),
        (status == "sent", SENT),
        (status == "failed", FAILED),
        else_=CANCELLED,
    )


def _has_notice(states: tuple[str, ...]) -> ColumnElement[bool]:
    """Some notice about the alert of the enclosing query is in one of ``states``."""
    return (
        select(col(AlertNotification.id))
        .outerjoin(Message, col(Message.id) == col(AlertNotification.message_id))
        .where(col(AlertNotification.alert_id) == col(Alert.id))
        .where(delivery_state().in_(states))
        .correlate(Alert)
        .exists()
    )


def reached_nobody() -> ColumnElement[bool]:
    """Open, urgent, and no notice about it sent or delivered to anyone."""
    return and_(
        col(Alert.severity) == URGENT,
        col(Alert.status) == OPEN,
        ~_has_notice(REACHED),
    )


def awaiting_fallback() -> ColumnElement[bool]:
    """Reached nobody, notified, not fallen back, and nothing still on its way."""
    return and_(
        reached_nobody(),
        col(Alert.notified_at).is_not(None),
        col(Alert.fallback_at).is_(None),
        ~_has_notice(IN_FLIGHT),
    )


def unreached_count(session: Session, practice_id: str | None = None) -> int:
    """Urgent alerts that have reached nobody: of one practice, or of all of them."""
    query = select(func.count()).select_from(Alert).where(reached_nobody())
    if practice_id is not None:
        query = query.where(col(Alert.practice_id) == practice_id)
    return int(session.exec(query).one())


def unreached_among(session: Session, alert_ids: Iterable[str]) -> set[str]:
    ids = list(alert_ids)
    if not ids:
        return set()
    return set(
        session.exec(select(col(Alert.id)).where(col(Alert.id).in_(ids)).where(reached_nobody()))
    )


@dataclass(frozen=True)
class NoticeView:
    """One notice as staff see it: to whom (a name, or None for the practice's e-mail), how."""

    id: str
    alert_id: str
    recipient_type: str
    recipient_id: str | None
    recipient_name: str | None
    channel: str
    kind: str
    state: str
    error: str | None
    at: datetime


def notices_of(session: Session, alert_ids: Iterable[str]) -> dict[str, list[NoticeView]]:
    """Every notice about each alert, oldest first (then by recipient and channel), in one query."""
    ids = list(alert_ids)
    found: dict[str, list[NoticeView]] = {alert_id: [] for alert_id in ids}
    if not ids:
        return found
    rows = session.exec(
        select(AlertNotification, col(StaffUser.name), delivery_state())
        .outerjoin(StaffUser, col(StaffUser.id) == col(AlertNotification.recipient_id))
        .outerjoin(Message, col(Message.id) == col(AlertNotification.message_id))
        .where(col(AlertNotification.alert_id).in_(ids))
        .order_by(
            col(AlertNotification.created_at),
            # a retry is made in the instant its attempt failed, and comes after it
            case((col(AlertNotification.status).in_(("queued", "retry", "sending")), 1), else_=0),
            # staff by name, then the practice's mailbox; e-mail before SMS
            col(AlertNotification.recipient_type).desc(),
            col(StaffUser.name),
            col(AlertNotification.channel),
            col(AlertNotification.id),
        )
    ).all()
    for notice, name, state in rows:
        found[notice.alert_id].append(
            NoticeView(
                id=notice.id,
                alert_id=notice.alert_id,
                recipient_type=notice.recipient_type,
                recipient_id=notice.recipient_id,
                recipient_name=name,
                channel=notice.channel,
                kind=notice.kind,
                state=state,
                error=notice.error,
                at=notice.sent_at or notice.created_at,
            )
        )
    return found


def latest_per_recipient(notices: Iterable[NoticeView]) -> list[NoticeView]:
    """The latest notice to each recipient by each channel, in the order they were first told."""
    latest: dict[tuple[str, str | None, str], NoticeView] = {}
    for notice in notices:  # a key keeps its first place; its value becomes the latest
        latest[(notice.recipient_type, notice.recipient_id, notice.channel)] = notice
    return list(latest.values())


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an alert's history, from the audit log (ids only)."""

    at: datetime
    actor: str
    action: str
    notice: NoticeView | None


def _rank(entry: HistoryEntry) -> int:
    """Within one instant (a test's fixed clock), what happened first."""
    if entry.action == "alert.raised":
        return 0
    if entry.action.endswith("_unsent"):
        return 2
    if entry.notice is not None:
        return 3
    if entry.action == "alert.acknowledged":
        return 4
    return 1


def history_of(session: Session, alert_id: str, notices: list[NoticeView]) -> list[HistoryEntry]:
    """The audit log's entries about the alert and its notices, oldest first."""
    by_id = {n.id: n for n in notices}
    about_alert = and_(
        col(AuditEvent.subject_type) == "alert", col(AuditEvent.subject_id) == alert_id
    )
    about_notices = and_(
        col(AuditEvent.subject_type) == "alert_notification",
        col(AuditEvent.subject_id).in_(list(by_id) or [""]),
    )
    events = session.exec(
        select(AuditEvent).where(or_(about_alert, about_notices)).order_by(col(AuditEvent.at))
    ).all()
    entries = [
        HistoryEntry(
            at=event.at,
            actor=event.actor,
            action=event.action,
            notice=by_id.get(event.subject_id or "")
            if event.subject_type == "alert_notification"
            else None,
        )
        for event in events
    ]
    return sorted(entries, key=lambda e: (e.at, _rank(e)))
