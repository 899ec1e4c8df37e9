"""Telling staff about urgent alerts: claim in the database, then send, then record.

Two service functions, called by the scheduler every few seconds and by
``prombot tick``: ``notify_due`` (new alerts, and the fallback for alerts
whose notices all failed) and ``escalate_due`` (alerts nobody acknowledged).
Who is told is decided in ``alert_routing``; what counts as reached is
defined in ``alert_reach``.

Each run has short steps, none of which holds a transaction open while
talking to a mail server or an SMS gateway:

1. Claim (one transaction): urgent alerts that are due, locked with
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite takes its write lock at
   ``BEGIN IMMEDIATE``). Each is marked (``notified_at``, ``fallback_at``, or
   ``escalations`` and a new ``next_escalation_at``) and gets one
   ``alert_notification`` row per recipient and channel, status ``queued``,
   in the same transaction. A second scheduler process skips the locked
   alerts or, once they commit, no longer finds them due: nobody is told twice.
2. Deliver: notification rows that are ``queued``, or ``retry`` and due, are
   claimed the same way (status ``sending``); each is sent on its own, so one
   failed e-mail stops neither the text nor anyone else's notice.
3. Record (one short transaction per notice): ``sent``, or ``failed`` with a
   short error. A failure is tried again on a later run, after
   ``RETRY_AFTER``, up to ``MAX_ATTEMPTS`` failures in a row for one
   recipient, alert, channel and kind (a later escalation round tries once
   more); an SMS refused for good (e.g. not a mobile) is not retried.
4. Fall back: an alert whose notices have all failed for good (including a
   text whose delivery report says it never arrived) goes at once to the
   escalation contacts and the practice's contact e-mail, once.

Every notice and every claim is in the audit log, by id only; the fallback's
entry says why (``alert.fallback.<reason>``). Delivery is at least once: a
process that dies between sending and recording leaves a row ``sending``,
which is sent again after ``STALE_AFTER`` (a clinician may then get a notice
twice, never none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bot.alerts.email import build_email, send_email, short_error
from bot.alerts.texts import alert_link, notice
from bot.services import alert_reach, alert_routing, audit
from bot.services.alert_routing import PRACTICE_CONTACT, Recipient
from bot.services.runtime import Runtime
from bot.sms.gateway import SendError
from bot.store.db import transaction
from bot.store.models import Alert, AlertNotification, Message, Practice, StaffUser

log = structlog.get_logger(__name__)

URGENT = "urgent"
ACTOR = "system"
BATCH = 100
MAX_ATTEMPTS = 3
"""Failures in a row (per recipient, alert, channel and kind) before a notice is given up."""
RETRY_AFTER = timedelta(minutes=1)
"""How long a failed notice waits before it is tried again."""
STALE_AFTER = timedelta(minutes=10)
"""A notice still ``sending`` this long after its attempt began was interrupted: send it again."""
TEXT_LEASE = 2 * STALE_AFTER
"""How long the outbox leaves a text to staff alone while this module is sending it."""


def notify_due(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Tell the duty clinician(s), or the fallback, about every urgent alert not yet notified.

    Then send what waits, and fall back for any alert whose notices have all
    failed for good, sending those notices at once too.
    """
    alerts = _claim_new_alerts(rt, now, limit)
    counts = _deliver(rt, now, limit)
    fallbacks = _claim_fallbacks(rt, now, limit)
    if fallbacks:
        for key, value in _deliver(rt, now, limit).items():
            counts[key] += value
    return {"alerts": alerts, "fallbacks": fallbacks, **counts}


def escalate_due(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Escalate urgent alerts still open at their ``next_escalation_at``; send what waits."""
    alerts = _claim_escalations(rt, now, limit)
    return {"alerts": alerts, **_deliver(rt, now, limit)}


# -- claiming alerts ---------------------------------------------------------------------


def _claim_new_alerts(rt: Runtime, now: datetime, limit: int) -> int:
    email_on = alert_routing.email_alerts_on(rt.settings)
    with transaction(rt.engine) as session:
        alerts = session.exec(
            select(Alert)
            .where(Alert.severity == URGENT)
            .where(Alert.status == "open")
            .where(col(Alert.notified_at).is_(None))
            .order_by(col(Alert.created_at), col(Alert.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for alert in alerts:
            practice = session.get(Practice, alert.practice_id)
            assert practice is not None
            after = timedelta(minutes=max(1, practice.escalate_after_minutes))
            alert.notified_at = now
            # Counted from when it was raised: an alert that waited for a stopped
            # scheduler is escalated at once rather than 30 minutes late.
            alert.next_escalation_at = max(now, alert.created_at + after)
            route = alert_routing.first_notice(practice, _staff(session, practice.id), email_on)
            if route.fallback_reason is None:
                _audit_claim(session, alert, "alert.notified", now)
                _queue(session, alert, route.recipients, kind="notify", now=now)
                continue
            alert.fallback_at = now
            _audit_claim(session, alert, f"alert.fallback.{route.fallback_reason}", now)
            if not _queue(session, alert, route.recipients, kind="fallback", now=now):
                _audit_claim(session, alert, "alert.notify_unsent", now)
    return len(alerts)


def _claim_fallbacks(rt: Runtime, now: datetime, limit: int) -> int:
    """Alerts whose notices all failed for good: the escalation contacts and the mailbox, now."""
    email_on = alert_routing.email_alerts_on(rt.settings)
    with transaction(rt.engine) as session:
        alerts = session.exec(
            select(Alert)
            .where(alert_reach.awaiting_fallback())
            .order_by(col(Alert.created_at), col(Alert.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for alert in alerts:
            practice = session.get(Practice, alert.practice_id)
            assert practice is not None
            alert.fallback_at = now
            reason = alert_routing.NOTICES_FAILED
            _audit_claim(session, alert, f"alert.fallback.{reason}", now)
            recipients = alert_routing.fallback(practice, _staff(session, practice.id), email_on)
            if not _queue(session, alert, recipients, kind="fallback", now=now):
                _audit_claim(session, alert, "alert.fallback_unsent", now)
    return len(alerts)


def _claim_escalations(rt: Runtime, now: datetime, limit: int) -> int:
    email_on = alert_routing.email_alerts_on(rt.settings)
    with transaction(rt.engine) as session:
        alerts = session.exec(
            select(Alert)
            .where(Alert.severity == URGENT)
            .where(Alert.status == "open")
            .where(col(Alert.next_escalation_at).is_not(None))
            .where(col(Alert.next_escalation_at) <= now)
            .order_by(col(Alert.next_escalation_at), col(Alert.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for alert in alerts:
            practice = session.get(Practice, alert.practice_id)
            assert practice is not None
            alert.escalations += 1
            alert.next_escalation_at = now + timedelta(
                minutes=max(1, practice.escalate_every_minutes)
            )
            recipients = alert_routing.escalation(
                practice,
                _staff(session, practice.id),
                email_on,
                include_practice_contact=alert.fallback_at is not None,
            )
            queued = _queue(session, alert, recipients, kind="escalate", now=now)
            _audit_claim(
                session, alert, "alert.escalated" if queued else "alert.escalation_unsent", now
            )
    return len(alerts)


def _staff(session: Session, practice_id: str) -> list[StaffUser]:
    return list(
        session.exec(
            select(StaffUser)
            .where(StaffUser.practice_id == practice_id)
            .order_by(col(StaffUser.email), col(StaffUser.id))
        ).all()
    )


def _queue(
    session: Session, alert: Alert, recipients: list[Recipient], *, kind: str, now: datetime
) -> int:
    queued = 0
    for recipient in recipients:
        for channel in recipient.channels:
            session.add(
                AlertNotification(
                    alert_id=alert.id,
                    practice_id=alert.practice_id,
                    recipient_type=recipient.type,
                    recipient_id=recipient.staff_id,
                    channel=channel,
                    kind=kind,
                    status="queued",
                    created_at=now,
                )
            )
            queued += 1
    if not queued:
        # Shown on every staff page and counted by /healthz (alert_reach) until someone is told.
        log.error("alert.nobody_to_tell", alert_id=alert.id, kind=kind)
    return queued


def _audit_claim(session: Session, alert: Alert, action: str, now: datetime) -> None:
    audit.record(
        session,
        practice_id=alert.practice_id,
        actor=ACTOR,
        action=action,
        subject_type="alert",
        subject_id=alert.id,
        now=now,
    )


# -- delivering notices ------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    notification_id: str
    alert_id: str
    practice_id: str
    channel: str
    kind: str
    address: str
    from_number: str
    subject: str
    email_body: str
    sms_body: str
    message_id: str | None


def _deliver(rt: Runtime, now: datetime, limit: int) -> dict[str, int]:
    counts = {"sent": 0, "failed": 0}
    for job in _claim_notices(rt, now, limit):
        outcome = _send(rt, job, now)
        _record(rt, job, now, outcome)
        counts["failed" if outcome.error else "sent"] += 1
    return counts


def _claim_notices(rt: Runtime, now: datetime, limit: int) -> list[_Job]:
    with transaction(rt.engine) as session:
        rows = session.exec(
            select(AlertNotification)
            .where(
                or_(
                    AlertNotification.status == "queued",
                    and_(
                        AlertNotification.status == "retry",
                        col(AlertNotification.created_at) <= now - RETRY_AFTER,
                    ),
                    and_(
                        AlertNotification.status == "sending",
                        col(AlertNotification.sent_at) <= now - STALE_AFTER,
                    ),
                )
            )
            .order_by(col(AlertNotification.created_at), col(AlertNotification.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        jobs: list[_Job] = []
        for row in rows:
            alert = session.get(Alert, row.alert_id)
            practice = session.get(Practice, row.practice_id)
            address = _address(session, row, practice)
            reason = None
            if alert is None or practice is None or alert.status != "open":
                reason = "alert no longer open"
            elif not address:
                reason = f"recipient has no {'e-mail' if row.channel == 'email' else 'mobile'}"
            if reason:
                row.status = "cancelled"
                row.error = reason
                _audit_notice(session, row, now)
                continue
            assert alert is not None and practice is not None and address
            row.status = "sending"
            row.sent_at = now  # while sending: when this attempt began
            minutes_open = max(0, int((now - alert.created_at).total_seconds() // 60))
            words = notice(
                practice_name=practice.name,
                link=alert_link(rt.public_base_url, alert.id),
                kind=row.kind,
                minutes_open=minutes_open,
            )
            if row.channel == "sms":
                row.message_id = _text_row(session, row, practice, address, words.sms_body, now)
            jobs.append(
                _Job(
                    notification_id=row.id,
                    alert_id=alert.id,
                    practice_id=practice.id,
                    channel=row.channel,
                    kind=row.kind,
                    address=address,
                    from_number=practice.sms_number,
                    subject=words.subject,
                    email_body=words.email_body,
                    sms_body=words.sms_body,
                    message_id=row.message_id if row.channel == "sms" else None,
                )
            )
    return jobs


def _address(session: Session, row: AlertNotification, practice: Practice | None) -> str | None:
    """Where the notice goes, read now: a person's e-mail or mobile, or the practice's e-mail."""
    if row.recipient_type == PRACTICE_CONTACT:
        return practice.contact_email if practice and row.channel == "email" else None
    person = session.get(StaffUser, row.recipient_id) if row.recipient_id else None
    if person is None:
        return None
    return person.email if row.channel == "email" else person.mobile


def _text_row(
    session: Session,
    row: AlertNotification,
    practice: Practice,
    address: str,
    body: str,
    now: datetime,
) -> str:
    """The notice's text in the message log, where its delivery reports will land.

    Like every text it is in the message log (it is the local gateway's
    "phone"); no patient: it is to a member of staff. It carries a lease
    (``next_attempt_at``) so that the outbox, which settles texts left in
    flight, leaves it to this module while it is being sent. A notice sent
    again after a crash reuses its row if nothing else has settled it.
    """
    earlier = session.get(Message, row.message_id) if row.message_id else None
    if earlier is not None and earlier.status == "sending" and earlier.provider_sid is None:
        earlier.attempts += 1
        earlier.next_attempt_at = now + TEXT_LEASE
        earlier.updated_at = now
        return earlier.id
    message = Message(
        practice_id=practice.id,
        patient_id=None,
        direction="outbound",
        phone=address,
        body=body,
        status="sending",
        attempts=1,
        next_attempt_at=now + TEXT_LEASE,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    session.flush()  # the notice refers to it
    return message.id


@dataclass(frozen=True)
class _Outcome:
    error: str | None = None
    retry: bool = False
    provider_sid: str | None = None
    provider_status: str | None = None
    error_code: int | None = None


def _send(rt: Runtime, job: _Job, now: datetime) -> _Outcome:
    """Send one notice; any failure is caught, described in a line and returned."""
    try:
        if job.channel == "email":
            settings = rt.settings.smtp  # checked at start-up
            if settings is None:
                return _Outcome(error="e-mail alerts are off (SMTP_URL)")
            message = build_email(
                settings, to=job.address, subject=job.subject, body=job.email_body, now=now
            )
            send_email(settings, message)
            return _Outcome()
        assert job.message_id is not None
        sent = rt.gateway.send(
            to=job.address, from_=job.from_number, body=job.sms_body, message_id=job.message_id
        )
        return _Outcome(provider_sid=sent.provider_sid, provider_status=sent.status)
    except SendError as exc:
        text = f"{exc.code}: {exc}" if exc.code is not None else str(exc)
        return _Outcome(
            error=" ".join(text.split())[:200] or "SendError",
            retry=not exc.permanent,
            error_code=exc.code,
        )
    except ValueError as exc:  # a message that cannot be built: trying again will not help
        return _Outcome(error=short_error(exc))
    except Exception as exc:  # one notice's failure must not stop the others
        return _Outcome(error=short_error(exc), retry=True)


def _record(rt: Runtime, job: _Job, now: datetime, outcome: _Outcome) -> None:
    error = outcome.error
    with transaction(rt.engine) as session:
        row = session.get(AlertNotification, job.notification_id)
        assert row is not None
        if error is None:
            row.status = "sent"
            row.error = None
            row.sent_at = now
            log.info(
                "alert.notice_sent",
                notification_id=row.id,
                alert_id=row.alert_id,
                channel=row.channel,
                kind=row.kind,
            )
        else:
            row.status = "failed"
            row.error = error
            row.sent_at = None
            again = outcome.retry and _failures_in_a_row(session, row) < MAX_ATTEMPTS
            if again:
                session.add(
                    AlertNotification(
                        alert_id=row.alert_id,
                        practice_id=row.practice_id,
                        recipient_type=row.recipient_type,
                        recipient_id=row.recipient_id,
                        channel=row.channel,
                        kind=row.kind,
                        status="retry",
                        created_at=now,
                    )
                )
            log.warning(
                "alert.notice_failed",
                notification_id=row.id,
                alert_id=row.alert_id,
                channel=row.channel,
                kind=row.kind,
                will_retry=again,
            )
        _audit_notice(session, row, now)
        message = session.get(Message, job.message_id) if job.message_id else None
        if message is not None:
            message.status = outcome.provider_status or ("failed" if error else "sent")
            message.provider_sid = outcome.provider_sid
            message.error_code = outcome.error_code
            message.next_attempt_at = None  # settled: no lease left for the outbox to see
            if error is None:
                message.sent_at = now
            message.updated_at = now


def _failures_in_a_row(session: Session, row: AlertNotification) -> int:
    """Failed attempts at this notice since the last one that went (this one included)."""
    rows = session.exec(
        select(AlertNotification)
        .where(AlertNotification.alert_id == row.alert_id)
        .where(AlertNotification.recipient_type == row.recipient_type)
        .where(
            col(AlertNotification.recipient_id).is_(None)
            if row.recipient_id is None
            else AlertNotification.recipient_id == row.recipient_id
        )
        .where(AlertNotification.channel == row.channel)
        .where(AlertNotification.kind == row.kind)
    ).all()
    last_sent = max((r.created_at for r in rows if r.status == "sent"), default=None)
    return sum(
        1 for r in rows if r.status == "failed" and (last_sent is None or r.created_at > last_sent)
    )


def _audit_notice(session: Session, row: AlertNotification, now: datetime) -> None:
    audit.record(
        session,
        practice_id=row.practice_id,
        actor=ACTOR,
        action=f"alert_notification.{row.status}",
        subject_type="alert_notification",
        subject_id=row.id,
        now=now,
    )
