"""A practice's outcomes report: reach, safety and outcomes for a period, from aggregate queries.

Everything is computed in the database (COUNT, SUM, GROUP BY, and medians by
ranking with window functions, which SQLite and PostgreSQL both have); only
small aggregated sets come back to Python: one row per severity, and for
outcomes one row per distinct (baseline score, later score) pair. Nothing in
the report names or identifies a patient: it holds counts, shares and medians.

The period is a range of dates in the practice's time zone, ``start`` to
``end`` inclusive. Each section counts what *began* in the period:

**Reach**: invitations due in the period (cancelled ones left out). *Sent*:
the first text went out. *Answered*: at least one answer was recorded.
*Completed*: the questionnaire was finished. *Expired*: sent, then the
conversation timed out without being finished. *Not sent in time*: the
invitation expired before it could be sent. *Opted out*: the patient texted
STOP during it. Response rate = answered / sent, completion rate = completed /
sent. Median time to complete: from the first text to the last answer of
completed invitations. *Needed a reminder*: sent invitations whose
conversation sent at least one reminder.

**Safety**: alerts raised in the period, by severity. Median time to
acknowledge (acknowledged alerts only). Acknowledged within one hour: the share
of *all* alerts raised (an alert still open counts as not acknowledged in
time). Escalations: the number of escalation rounds, and the alerts escalated
at least once. Reached nobody: ``bot.services.alert_reach.reached_nobody`` (the
one definition: urgent, still open, and no notice sent or delivered to anyone),
as of when the report is made.

**Outcomes**: per instrument with change thresholds, patients whose *baseline*
(their first completed, scored result on that instrument, within the protocol
when one is chosen) falls in the period, and for each follow-up window the
completed, scored result nearest the target (6 weeks: nearest 42 days within
28-56 days of the baseline; 12 weeks: nearest 84 days within 70-98 days; a tie
goes to the earlier). Each pair is classified by ``bot.instruments.change.classify``
with the thresholds in the instrument's file (the one definition, as on the
patient's page and in FHIR): reliable
improvement, no reliable change or reliable deterioration (these three add up
to the patients paired); recovery is reported separately, as NHS Talking
Therapies does, among the paired patients who were a case at baseline.
Incomplete or unscored results are never read as a score (nor as zero): they
are excluded and counted (``incomplete_only``: patients whose only results in
the window were incomplete; ``no_follow_up``: no result in the window at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from bot.errors import NotFound
from bot.instruments import Catalogue, Instrument
from bot.instruments.change import Scored, classify
from bot.services import alert_reach
from bot.services.runtime import Runtime
from bot.store.db import transaction
from bot.store.models import (
    Alert,
    Answer,
    Consultation,
    Conversation,
    Invitation,
    Practice,
    Protocol,
    ResultRecord,
)
from bot.store.types import UTCDateTime

SEVERITIES = ("urgent", "routine", "information")
HOUR = 3600
DAY = 86400


# -- reliable change: bot.instruments.change, the one definition --------------------------

DIRECTION_COUNTS = {
    "reliable_improvement": "improved",
    "no_reliable_change": "no_change",
    "reliable_deterioration": "deteriorated",
}
"""Which count each of ``classify``'s directions adds to."""


def reported_instruments(catalogue: Catalogue | None) -> list[Instrument]:
    """The instruments whose file carries change thresholds (``change:``): PHQ-9, GAD-7, WHO-5
    first, then any other, by id. An instrument without them has no outcomes to report."""
    with_rules = {i.id: i for i in (catalogue or {}).values() if i.change is not None}
    first = [with_rules.pop(i) for i in ("phq9", "gad7", "who5") if i in with_rules]
    return first + [with_rules[i] for i in sorted(with_rules)]


# -- the report's shape --------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpWindow:
    name: str
    target_days: int
    earliest_days: int
    latest_days: int


WINDOWS = (
    FollowUpWindow("6 weeks", 42, 28, 56),
    FollowUpWindow("12 weeks", 84, 70, 98),
)


def share(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is nothing to divide by."""
    return part / whole if whole else None


@dataclass(frozen=True)
class Reach:
    due: int = 0
    sent: int = 0
    not_sent_in_time: int = 0
    answered: int = 0
    completed: int = 0
    expired: int = 0
    opted_out: int = 0
    needed_reminder: int = 0
    median_minutes_to_complete: float | None = None

    @property
    def response_rate(self) -> float | None:
        return share(self.answered, self.sent)

    @property
    def completion_rate(self) -> float | None:
        return share(self.completed, self.sent)


@dataclass(frozen=True)
class SafetyRow:
    severity: str
    raised: int = 0
    acknowledged: int = 0
    acknowledged_within_hour: int = 0
    median_minutes_to_acknowledge: float | None = None
    escalations: int = 0
    escalated_alerts: int = 0
    reached_nobody: int = 0

    @property
    def within_hour_share(self) -> float | None:
        return share(self.acknowledged_within_hour, self.raised)


@dataclass(frozen=True)
class OutcomeRow:
    instrument: str
    window: str
    baselines: int = 0
    paired: int = 0
    incomplete_only: int = 0
    no_follow_up: int = 0
    improved: int = 0
    no_change: int = 0
    deteriorated: int = 0
    at_caseness: int = 0
    recovered: int = 0
    has_caseness: bool = True

    @property
    def excluded(self) -> int:
        return self.incomplete_only + self.no_follow_up

    def rate(self, name: str) -> float | None:
        if name == "recovered":
            return share(self.recovered, self.at_caseness)
        return share(getattr(self, name), self.paired)


@dataclass(frozen=True)
class OutcomeReport:
    practice_name: str
    start: date
    end: date
    protocol: str | None
    reach: Reach
    safety: list[SafetyRow]
    """One row per severity, then ``all``."""
    outcomes: list[OutcomeRow]
    incomplete_results: dict[str, int] = field(default_factory=dict)
    """Results in the period that were incomplete or unscored, per instrument (excluded)."""

    def figures(self) -> list[tuple[str, str, str, Any]]:
        """Every figure as (section, group, measure, value): the CSV and the tests read this."""
        rows: list[tuple[str, str, str, Any]] = []
        r = self.reach
        for name in (
            "due",
            "sent",
            "not_sent_in_time",
            "answered",
            "completed",
            "expired",
            "opted_out",
            "needed_reminder",
            "response_rate",
            "completion_rate",
            "median_minutes_to_complete",
        ):
            rows.append(("reach", "all", name, getattr(r, name)))
        for s in self.safety:
            for name in (
                "raised",
                "acknowledged",
                "acknowledged_within_hour",
                "within_hour_share",
                "median_minutes_to_acknowledge",
                "escalations",
                "escalated_alerts",
                "reached_nobody",
            ):
                rows.append(("safety", s.severity, name, getattr(s, name)))
        for o in self.outcomes:
            group = f"{o.instrument} {o.window}"
            for name in ("baselines", "paired", "incomplete_only", "no_follow_up"):
                rows.append(("outcomes", group, name, getattr(o, name)))
            for name in ("improved", "no_change", "deteriorated"):
                rows.append(("outcomes", group, name, getattr(o, name)))
                rows.append(("outcomes", group, f"{name}_share", o.rate(name)))
            if o.has_caseness:
                rows.append(("outcomes", group, "at_caseness", o.at_caseness))
                rows.append(("outcomes", group, "recovered", o.recovered))
                rows.append(("outcomes", group, "recovered_share", o.rate("recovered")))
        for instrument, count in sorted(self.incomplete_results.items()):
            rows.append(("outcomes", instrument, "incomplete_results_excluded", count))
        return rows


# -- the queries ---------------------------------------------------------------------------


def period_bounds(zone: str, start: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants of local midnight at ``start`` and after ``end`` (inclusive dates)."""
    tz = ZoneInfo(zone)
    first = datetime.combine(start, time(0), tz).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(0), tz).astimezone(UTC)
    return first, after


def _seconds(dialect: str, earlier: Any, later: Any) -> ColumnElement[float]:
    """Seconds from ``earlier`` to ``later``, in SQL, on either database."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    # whole seconds: julianday's floating point would put an exact 56 days a hair either side
    return func.round((func.julianday(later) - func.julianday(earlier)) * DAY)


def _reminders_sent(dialect: str) -> ColumnElement[int]:
    """The conversation state's ``reminders_sent``, read inside the database."""
    state = col(Conversation.state_json)
    if dialect == "postgresql":
        return cast(cast(state, JSONB)["reminders_sent"].astext, Integer)
    return func.json_extract(state, "$.reminders_sent")


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _medians(session: Session, key: Any, value: Any, base: Any) -> dict[Any, float]:
    """The median of ``value`` per ``key`` (or overall, under None) over ``base``'s rows, in SQL.

    Rows are ranked per key; the median is the mean of the middle one or two
    (``2 * rank`` between ``n`` and ``n + 2``). Only one row per key comes back.
    """
    ranked = base.add_columns(
        (key if key is not None else literal_column("0")).label("k"),
        value.label("v"),
        func.row_number().over(partition_by=key, order_by=value).label("rn"),
        func.count().over(partition_by=key).label("n"),
    ).subquery()
    middle = and_(2 * ranked.c.rn >= ranked.c.n, 2 * ranked.c.rn <= ranked.c.n + 2)
    if key is None:
        found = session.exec(select(func.avg(ranked.c.v)).where(middle)).one()
        return {} if found is None else {None: float(found)}
    rows = session.exec(
        select(ranked.c.k, func.avg(ranked.c.v)).where(middle).group_by(ranked.c.k)
    ).all()
    return {k: float(v) for k, v in rows}


def _reach(session: Session, dialect: str, scope: dict[str, Any]) -> Reach:
    inv = Invitation
    sent = col(inv.started_at).is_not(None)
    answered = (
        select(col(Answer.id)).where(col(Answer.invitation_id) == col(inv.id)).correlate(inv)
    ).exists()
    base = (
        select()
        .select_from(inv)
        .outerjoin(Conversation, col(Conversation.invitation_id) == col(inv.id))
        .where(col(inv.practice_id) == scope["practice_id"])
        .where(col(inv.due_at) >= scope["first"], col(inv.due_at) < scope["after"])
        .where(col(inv.status) != "cancelled")
    )
    if scope["protocol"] is not None:
        base = base.join(Consultation, col(Consultation.id) == col(inv.consultation_id)).where(
            col(Consultation.protocol) == scope["protocol"]
        )
    row = session.exec(
        base.add_columns(
            func.count(),
            _count_if(sent),
            _count_if(and_(~sent, col(inv.status) == "expired")),
            _count_if(and_(sent, answered)),
            _count_if(col(inv.status) == "completed"),
            _count_if(and_(sent, col(Conversation.status) == "expired")),
            _count_if(col(inv.status) == "opted_out"),
            _count_if(and_(sent, func.coalesce(_reminders_sent(dialect), 0) >= 1)),
        )
    ).one()
    durations = base.where(col(inv.status) == "completed").where(
        col(inv.finished_at).is_not(None), sent
    )
    median = _medians(session, None, _seconds(dialect, inv.started_at, inv.finished_at), durations)
    seconds = median.get(None)
    return Reach(
        *(int(v) for v in row),
        median_minutes_to_complete=None if seconds is None else round(seconds / 60, 1),
    )


def _safety(session: Session, dialect: str, scope: dict[str, Any]) -> list[SafetyRow]:
    acknowledged = col(Alert.acknowledged_at).is_not(None)
    to_ack = _seconds(dialect, Alert.created_at, Alert.acknowledged_at)
    base = (
        select()
        .select_from(Alert)
        .where(col(Alert.practice_id) == scope["practice_id"])
        .where(col(Alert.created_at) >= scope["first"], col(Alert.created_at) < scope["after"])
    )
    if scope["protocol"] is not None:
        base = (
            base.join(Invitation, col(Invitation.id) == col(Alert.invitation_id))
            .join(Consultation, col(Consultation.id) == col(Invitation.consultation_id))
            .where(col(Consultation.protocol) == scope["protocol"])
        )
    measures = (
        func.count(),
        _count_if(acknowledged),
        _count_if(and_(acknowledged, to_ack <= HOUR)),
        func.coalesce(func.sum(col(Alert.escalations)), 0),
        _count_if(col(Alert.escalations) > 0),
        _count_if(alert_reach.reached_nobody()),
    )
    by_severity = {
        severity: counts
        for severity, *counts in session.exec(
            base.add_columns(col(Alert.severity), *measures).group_by(col(Alert.severity))
        ).all()
    }
    overall = session.exec(base.add_columns(*measures)).one()
    acknowledged_rows = base.where(acknowledged)
    medians = _medians(session, col(Alert.severity), to_ack, acknowledged_rows)
    median_all = _medians(session, None, to_ack, acknowledged_rows).get(None)
    severities = [*SEVERITIES, *sorted(set(by_severity) - set(SEVERITIES))]

    def row(severity: str, counts: Any, median: float | None) -> SafetyRow:
        raised, ack, within, escalations, escalated, nobody = (int(c) for c in counts)
        return SafetyRow(
            severity,
            raised,
            ack,
            within,
            None if median is None else round(median / 60, 1),
            escalations,
            escalated,
            nobody,
        )

    return [
        *(row(s, by_severity.get(s, (0,) * 6), medians.get(s)) for s in severities),
        row("all", overall, median_all),
    ]


def _outcomes(
    session: Session, dialect: str, scope: dict[str, Any], instrument: Instrument
) -> list[OutcomeRow]:
    """One pass over the practice's results on ``instrument``, with window functions.

    Each result row carries its patient's baseline (the earliest complete, scored
    result: complete rows sort first) and its distance from it; rows in a follow-up
    window are ranked by nearness to the window's target. No self-join.
    """
    r = ResultRecord
    # totals, as ``classify`` takes them (it puts WHO-5's on its percentage scale itself)
    score: ColumnElement[int] = col(r.total)
    complete = case((and_(col(r.status) == "completed", score.is_not(None)), 1), else_=0)
    patient = col(r.patient_id)
    conditions = [col(r.practice_id) == scope["practice_id"], col(r.instrument) == instrument.id]
    if scope["protocol"] is not None:
        conditions.append(
            select(col(Invitation.id))
            .join(Consultation, col(Consultation.id) == col(Invitation.consultation_id))
            .where(col(Invitation.id) == col(r.invitation_id))
            .where(col(Consultation.protocol) == scope["protocol"])
            .correlate(r)
            .exists()
        )
    rows = (
        select(
            patient.label("patient_id"),
            col(r.finished_at).label("at"),
            score.label("score"),
            complete.label("complete"),
            type_coerce(
                func.min(case((complete == 1, col(r.finished_at)))).over(partition_by=patient),
                UTCDateTime,
            ).label("base_at"),
            func.first_value(score)
            .over(
                partition_by=patient,
                order_by=(complete.desc(), col(r.finished_at), col(r.id)),
            )
            .label("base_score"),
        )
        .where(*conditions)
        .subquery()
    )
    gap = _seconds(dialect, rows.c.base_at, rows.c.at)
    bucket = case(
        *(
            (and_(gap >= w.earliest_days * DAY, gap <= w.latest_days * DAY), n)
            for n, w in enumerate(WINDOWS, start=1)
        ),
        else_=0,
    )
    target = case(*((bucket == n, w.target_days * DAY) for n, w in enumerate(WINDOWS, 1)), else_=0)
    placed = (
        select(
            rows.c.patient_id,
            rows.c.score,
            rows.c.base_score,
            rows.c.complete,
            bucket.label("bucket"),
            func.row_number()
            .over(
                partition_by=(rows.c.patient_id, bucket, rows.c.complete),
                order_by=(func.abs(gap - target), rows.c.at),
            )
            .label("rn"),
        )
        .where(rows.c.base_at.is_not(None))
        .where(rows.c.base_at >= scope["first"], rows.c.base_at < scope["after"])
        .subquery()
    )
    # one row per patient and window (bucket 0: the baseline and anything outside the
    # windows, so every patient has one), with the pair if a complete score was found
    paired_now = and_(placed.c.complete == 1, placed.c.rn == 1, placed.c.bucket > 0)
    per_patient = (
        select(
            placed.c.bucket,
            func.max(case((paired_now, placed.c.base_score))).label("before"),
            func.max(case((paired_now, placed.c.score))).label("after"),
        )
        .group_by(placed.c.patient_id, placed.c.bucket)
        .subquery()
    )
    baselines = 0
    any_in: dict[int, int] = {}
    pairs: dict[int, list[tuple[int, int, int]]] = {}
    for n_window, before, after, n in session.exec(
        select(
            per_patient.c.bucket, per_patient.c.before, per_patient.c.after, func.count()
        ).group_by(per_patient.c.bucket, per_patient.c.before, per_patient.c.after)
    ).all():
        n_window, n = int(n_window), int(n)
        if n_window == 0:
            baselines += n
            continue
        any_in[n_window] = any_in.get(n_window, 0) + n
        if before is not None and after is not None:
            pairs.setdefault(n_window, []).append((before, after, n))
    result = []
    for n_window, window in enumerate(WINDOWS, start=1):
        counts = {"improved": 0, "no_change": 0, "deteriorated": 0, "at_caseness": 0}
        recovered = paired = 0
        for before, after, n in pairs.get(n_window, []):
            change = classify(instrument, Scored(before), Scored(after))
            if change is None:  # cannot happen: both scores are present, and thresholds
                continue
            paired += n
            counts[DIRECTION_COUNTS[change.direction]] += n
            if change.recovery in ("reliable_recovery", "recovery", "not_recovered"):
                counts["at_caseness"] += n  # a case at baseline
                recovered += n if change.recovery != "not_recovered" else 0
        any_in_window = int(any_in.get(n_window, 0))
        result.append(
            OutcomeRow(
                instrument=instrument.id,
                window=window.name,
                baselines=baselines,
                paired=paired,
                incomplete_only=any_in_window - paired,
                no_follow_up=baselines - any_in_window,
                recovered=recovered,
                has_caseness=instrument.change is not None
                and instrument.change.caseness_min is not None,
                **counts,
            )
        )
    return result


def _incomplete_results(session: Session, scope: dict[str, Any]) -> dict[str, int]:
    r = ResultRecord
    query = (
        select(col(r.instrument), func.count())
        .where(col(r.practice_id) == scope["practice_id"])
        .where(col(r.finished_at) >= scope["first"], col(r.finished_at) < scope["after"])
        .where(or_(col(r.status) != "completed", col(r.total).is_(None)))
        .group_by(col(r.instrument))
    )
    if scope["protocol"] is not None:
        query = (
            query.join(Invitation, col(Invitation.id) == col(r.invitation_id))
            .join(Consultation, col(Consultation.id) == col(Invitation.consultation_id))
            .where(col(Consultation.protocol) == scope["protocol"])
        )
    return {instrument: int(n) for instrument, n in session.exec(query).all()}


def build_report(
    session: Session,
    catalogue: Catalogue | None,
    practice: Practice,
    *,
    start: date,
    end: date,
    protocol: str | None = None,
) -> OutcomeReport:
    """The report for one practice, inside the caller's session (read only)."""
    dialect = session.get_bind().dialect.name
    first, after = period_bounds(practice.timezone, start, end)
    scope = {"practice_id": practice.id, "first": first, "after": after, "protocol": protocol}
    outcomes = [
        row
        for instrument in reported_instruments(catalogue)
        for row in _outcomes(session, dialect, scope, instrument)
    ]
    return OutcomeReport(
        practice_name=practice.name,
        start=start,
        end=end,
        protocol=protocol,
        reach=_reach(session, dialect, scope),
        safety=_safety(session, dialect, scope),
        outcomes=outcomes,
        incomplete_results=_incomplete_results(session, scope),
    )


def outcome_report(
    rt: Runtime, practice_id: str, *, start: date, end: date, protocol: str | None = None
) -> OutcomeReport:
    """The practice outcomes report, as one read-only unit of work."""
    with transaction(rt.engine, read_only=True) as session:
        practice = session.get(Practice, practice_id)
        if practice is None:
            raise NotFound(practice_id)
        return build_report(
            session, rt.catalogue, practice, start=start, end=end, protocol=protocol
        )


def protocol_choices(rt: Runtime, practice_id: str) -> list[tuple[str, str]]:
    """The protocols a report can be narrowed to: the practice's own, and any used so far."""
    with transaction(rt.engine, read_only=True) as session:
        own = dict(
            session.exec(
                select(col(Protocol.name), col(Protocol.title)).where(
                    col(Protocol.practice_id) == practice_id
                )
            ).all()
        )
        used = session.exec(
            select(col(Consultation.protocol))
            .where(col(Consultation.practice_id) == practice_id)
            .where(col(Consultation.protocol).is_not(None))
            .distinct()
        ).all()
    for name in used:
        own.setdefault(name, name)
    return sorted(own.items())
