"""A practice's history with known figures, for the outcomes report's tests and the browser test.

Rows are inserted directly (as the services store them): thousands of real
conversations would be slow and would test the conversation code, not the
report. Names, numbers and NHS numbers are invented (Ofcom drama numbers).

Two histories: ``reach_and_safety`` (invitations and alerts, January and
February 2026) and ``outcomes`` (PHQ-9, GAD-7 and WHO-5 scores). Each figure
the tests expect is worked out in the comments beside the rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from bot.store.models import (
    Alert,
    AlertNotification,
    Answer,
    Consultation,
    Conversation,
    Invitation,
    Patient,
    Practice,
    ResultRecord,
)

DEP = "depression_review"
ANX = "anxiety_review"


def at(day: str, clock: str = "10:00") -> datetime:
    """A UTC time ("2026-01-05", "10:20"); January-March is GMT, so local time too."""
    return datetime.fromisoformat(f"{day}T{clock}:00").replace(tzinfo=UTC)


class History:
    def __init__(self, session: Session, practice: Practice, phone_base: int = 200) -> None:
        self.session = session
        self.practice = practice
        self._next_phone = phone_base
        self.patients: list[Patient] = []

    def patient(self, name: str, nhs_number: str | None = None) -> Patient:
        phone = f"+447700900{self._next_phone:03d}"
        self._next_phone += 1
        person = Patient(
            practice_id=self.practice.id,
            name=name,
            phone=phone,
            nhs_number=nhs_number,
            created_at=at("2025-12-01"),
        )
        self.session.add(person)
        self.session.flush()
        self.patients.append(person)
        return person

    def invitation(
        self,
        person: Patient,
        *,
        protocol: str | None,
        due: datetime,
        status: str,
        instrument: str = "phq9",
        finished: datetime | None = None,
        sent: bool = True,
        conversation: str | None = None,
        reminders: int = 0,
        answers: int = 0,
    ) -> Invitation:
        consultation = Consultation(
            practice_id=self.practice.id,
            patient_id=person.id,
            occurred_at=due - timedelta(days=1),
            protocol=protocol,
            created_at=due - timedelta(days=1),
        )
        self.session.add(consultation)
        self.session.flush()
        invitation = Invitation(
            practice_id=self.practice.id,
            patient_id=person.id,
            consultation_id=consultation.id,
            instrument=instrument,
            due_at=due,
            status=status,
            started_at=due if sent else None,
            finished_at=finished,
            created_at=due - timedelta(days=1),
        )
        self.session.add(invitation)
        self.session.flush()
        if sent:
            talk = Conversation(
                practice_id=self.practice.id,
                patient_id=person.id,
                invitation_id=invitation.id,
                phone=person.phone,
                active=False,
                status=conversation or status,
                state_json=json.dumps({"instrument": instrument, "reminders_sent": reminders}),
                created_at=due,
                updated_at=finished or due,
            )
            self.session.add(talk)
            self.session.flush()
            for n in range(answers):
                self.session.add(
                    Answer(
                        conversation_id=talk.id,
                        invitation_id=invitation.id,
                        instrument=instrument,
                        item=f"item{n}",
                        value=1,
                        raw_text="1",
                        answered_at=due + timedelta(minutes=n + 1),
                    )
                )
        return invitation

    def alert(
        self,
        person: Patient,
        invitation: Invitation | None,
        *,
        created: datetime,
        severity: str = "urgent",
        acknowledged_after: timedelta | None = None,
        escalations: int = 0,
        notice: str | None = None,
    ) -> Alert:
        alert = Alert(
            practice_id=self.practice.id,
            patient_id=person.id,
            invitation_id=invitation.id if invitation else None,
            flag="self_harm_risk" if severity == "urgent" else "severe_score",
            severity=severity,
            reason="item",
            status="acknowledged" if acknowledged_after is not None else "open",
            created_at=created,
            acknowledged_at=created + acknowledged_after if acknowledged_after else None,
            acknowledged_by="user:someone" if acknowledged_after else None,
            notified_at=created,
            escalations=escalations,
        )
        self.session.add(alert)
        self.session.flush()
        if notice is not None:
            self.session.add(
                AlertNotification(
                    alert_id=alert.id,
                    practice_id=self.practice.id,
                    recipient_type="practice_contact",
                    channel="email",
                    kind="notify",
                    status=notice,
                    created_at=created,
                    sent_at=created if notice == "sent" else None,
                )
            )
        return alert

    def result(
        self,
        person: Patient,
        instrument: str,
        when: datetime,
        total: int | None,
        *,
        percentage: int | None = None,
        status: str = "completed",
        protocol: str | None = DEP,
    ) -> ResultRecord:
        invitation = self.invitation(
            person,
            protocol=protocol,
            due=when,
            status=status,
            instrument=instrument,
            finished=when,
            conversation=status,
        )
        result = ResultRecord(
            practice_id=self.practice.id,
            patient_id=person.id,
            invitation_id=invitation.id,
            instrument=instrument,
            instrument_version="1",
            status=status,
            total=total,
            band=None,
            percentage=percentage,
            answers_json="{}",
            flags_json="[]",
            finished_at=when,
        )
        self.session.add(result)
        self.session.flush()
        return result


def reach_and_safety(session: Session, practice: Practice, phone_base: int = 200) -> History:
    """Invitations due in January-February 2026 and the alerts they raised.

    Expected for 2026-01-01..2026-03-31, all protocols: due 8 (the cancelled one
    is left out), sent 6, not sent in time 1, answered 4, completed 3, expired
    2, opted out 1, needed a reminder 3, median minutes to complete 40
    (20, 40, 1440). Alerts: see ``SAFETY`` in the tests.
    """
    h = History(session, practice, phone_base)
    ann = h.patient("Ann Testpatient", "9434765870")
    ben = h.patient("Ben Testpatient")
    cal = h.patient("Cal Testpatient")
    # 1: completed in 20 minutes, no reminder (depression)
    i1 = h.invitation(
        ann, protocol=DEP, due=at("2026-01-05"), status="completed",
        finished=at("2026-01-05", "10:20"), answers=9,
    )  # fmt: skip
    # 2: completed after a day and a reminder (depression)
    i2 = h.invitation(
        ben, protocol=DEP, due=at("2026-01-06"), status="completed",
        finished=at("2026-01-07"), reminders=1, answers=9,
    )  # fmt: skip
    # 3: completed in 40 minutes (anxiety)
    i3 = h.invitation(
        cal, protocol=ANX, due=at("2026-01-08", "09:00"), status="completed",
        instrument="gad7", finished=at("2026-01-08", "09:40"), answers=7,
    )  # fmt: skip
    # 4: one answer, a reminder, then timed out (depression)
    i4 = h.invitation(
        ann, protocol=DEP, due=at("2026-01-20"), status="incomplete",
        finished=at("2026-01-27"), conversation="expired", reminders=1, answers=1,
    )  # fmt: skip
    # 5: no answer at all, a reminder, timed out (depression)
    h.invitation(
        ben, protocol=DEP, due=at("2026-01-21"), status="incomplete",
        finished=at("2026-01-28"), conversation="expired", reminders=1,
    )  # fmt: skip
    # 6: STOP (anxiety)
    i6 = h.invitation(
        cal, protocol=ANX, due=at("2026-02-02"), status="opted_out", instrument="gad7",
        finished=at("2026-02-02", "10:05"),
    )  # fmt: skip
    # 7: never sent: past its window (depression)
    h.invitation(ann, protocol=DEP, due=at("2026-02-03"), status="expired", sent=False)
    # 8: still waiting to be sent (depression)
    h.invitation(ben, protocol=DEP, due=at("2026-02-20"), status="pending", sent=False)
    # 9: cancelled: not counted (depression)
    h.invitation(ann, protocol=DEP, due=at("2026-02-21"), status="cancelled", sent=False)
    # outside the period: not counted
    h.invitation(ann, protocol=DEP, due=at("2025-12-20"), status="completed",
                 finished=at("2025-12-20", "10:05"), answers=9)  # fmt: skip

    # Alerts
    h.alert(ann, i1, created=at("2026-01-05", "10:10"), acknowledged_after=timedelta(minutes=30),
            notice="sent")  # fmt: skip
    h.alert(ben, i2, created=at("2026-01-06", "12:00"), acknowledged_after=timedelta(minutes=120),
            escalations=2, notice="sent")  # fmt: skip
    # open, urgent, escalated once, no notice got through: reached nobody (anxiety)
    h.alert(cal, i3, created=at("2026-02-01"), escalations=1, notice="failed")
    # open, urgent, told the practice's mailbox: reached someone (depression)
    h.alert(ann, i4, created=at("2026-02-02"), notice="sent")
    h.alert(cal, i6, created=at("2026-02-03"), severity="routine",
            acknowledged_after=timedelta(minutes=50))  # fmt: skip
    h.alert(ben, None, created=at("2026-02-04"), severity="information")
    # outside the period: not counted
    h.alert(ann, None, created=at("2025-12-31"))
    session.flush()
    return h


def outcomes(session: Session, practice: Practice, phone_base: int = 300) -> History:
    """PHQ-9, GAD-7 and WHO-5 scores; the expected classification is beside each patient."""
    h = History(session, practice, phone_base)
    names = [f"Outcome Testpatient {n}" for n in range(1, 10)]
    p = [h.patient(name) for name in names]
    d = timedelta(days=1)
    # P1: 15 (case) -> 8 at 6 weeks (improved 7, recovered) -> 4 at 12 weeks (same)
    b = at("2026-01-05")
    h.result(p[0], "phq9", b, 15)
    h.result(p[0], "phq9", b + 42 * d, 8)
    h.result(p[0], "phq9", b + 84 * d, 4)
    # P1 GAD-7: 9 (case) -> 5 at 6 weeks: exactly the reliable change 4, recovered
    h.result(p[0], "gad7", b, 9, protocol=ANX)
    h.result(p[0], "gad7", b + 42 * d, 5, protocol=ANX)
    # P2: 12 -> 11 at day 30 and 5 at day 45: day 45 is nearer 42 (improved, recovered);
    # nothing at 12 weeks
    b = at("2026-01-06")
    h.result(p[1], "phq9", b, 12)
    h.result(p[1], "phq9", b + 30 * d, 11)
    h.result(p[1], "phq9", b + 45 * d, 5)
    # P2 WHO-5 (percentage, higher is better): 40 -> 48 (+8: no reliable change) -> 52 (+12)
    h.result(p[1], "who5", b, 10, percentage=40, protocol=None)
    h.result(p[1], "who5", b + 42 * d, 12, percentage=48, protocol=None)
    h.result(p[1], "who5", b + 84 * d, 13, percentage=52, protocol=None)
    # P3: 8 (not a case) -> 15 at day 40 (deteriorated); only an incomplete result at day 90
    b = at("2026-01-10")
    h.result(p[2], "phq9", b, 8)
    h.result(p[2], "phq9", b + 40 * d, 15)
    h.result(p[2], "phq9", b + 90 * d, None, status="incomplete")
    # P4: 14 -> 10 (change 4: no reliable change, still a case) -> 9 (change 5: no
    # reliable change, but below caseness: recovered)
    b = at("2026-01-12")
    h.result(p[3], "phq9", b, 14)
    h.result(p[3], "phq9", b + 42 * d, 10)
    h.result(p[3], "phq9", b + 84 * d, 9)
    # P5: first score before the period: not a baseline in it
    b = at("2025-12-20")
    h.result(p[4], "phq9", b, 20)
    h.result(p[4], "phq9", b + 42 * d, 10)
    # P6: an incomplete first attempt (not a baseline, never a zero), then 11; no follow-up
    h.result(p[5], "phq9", at("2026-01-15"), None, status="incomplete")
    h.result(p[5], "phq9", at("2026-01-20"), 11)
    # P7: 16 -> 10 at day 56, the window's last day (exactly 6: improved; 10 is still a
    # case) -> 22 at day 98 (exactly 6 worse: deteriorated)
    b = at("2026-02-01")
    h.result(p[6], "phq9", b, 16)
    h.result(p[6], "phq9", b + 56 * d, 10)
    h.result(p[6], "phq9", b + 98 * d, 22)
    # P8 (anxiety protocol): 10 -> 10
    b = at("2026-02-02")
    h.result(p[7], "phq9", b, 10, protocol=ANX)
    h.result(p[7], "phq9", b + 42 * d, 10, protocol=ANX)
    # P9: 18 -> 2 at day 27 and at day 99: both just outside the windows
    b = at("2026-02-03")
    h.result(p[8], "phq9", b, 18)
    h.result(p[8], "phq9", b + 27 * d, 2)
    h.result(p[8], "phq9", b + 99 * d, 2)
    session.flush()
    return h
