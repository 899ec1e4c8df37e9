"""The outbox: outbound texts written with the state change that caused them, sent after.

A text is a ``message`` row with status ``queued`` written in the same
transaction as the conversation change, so a crash can never leave a state
change without its text or a text without its state change.

``send_outbox`` then, in this order:

1. settles texts whose fate is unknown (``reconcile_in_flight``, below);
2. claims due texts: ``queued``, no provider id yet, ``next_attempt_at`` empty
   or past, and no earlier text to the same phone still held back (texts to
   one phone go out in the order they were written). The claim marks them
   ``sending``, counts the attempt and gives them a lease
   (``next_attempt_at`` = now + SMS_SEND_LEASE_SECONDS), and commits at once
   (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several schedulers never take
   the same row; SQLite's write lock does the same);
3. hands each to the gateway, paced to SMS_MAX_PER_SECOND (a token bucket),
   with no transaction open, and records the outcome in a short transaction
   of its own:

   * accepted: the provider's id (SID) and status, ``sent_at``;
   * transient failure (429, a connection that was never made): back to
     ``queued`` with ``next_attempt_at`` = now + exponential backoff with
     jitter (at least the provider's Retry-After); after SMS_MAX_ATTEMPTS
     attempts, ``failed`` with the last error code;
   * in doubt (a 5xx, a timeout while waiting for the answer, a crash of the
     gateway code): the provider may have the text. It stays ``sending`` until
     the backoff (at least a lease) has passed, then is looked up before it is
     ever sent again;
   * permanent failure (any other 4xx): ``failed`` at once with the provider's
     error code, visible in the message log. 21610 (the recipient replied STOP
     to this sender) also opts the patient out here: pending invitations and
     queued texts are cancelled and an open questionnaire ends.

The guarantee (for the README): *a queued text is never lost and never sent
twice, whatever crashes.* A text is handed to the gateway only after a
committed claim, and a claimed text that has not been settled (its process
died between claim and send, or between send and commit, or the answer never
came) stays ``sending``. When its lease has run out, ``reconcile_in_flight``
asks the gateway whether it has the text (Twilio's Messages list, by
recipient, sender, time and body, skipping SIDs already recorded): if so, the
SID and status are recorded and it is never resent; only if the gateway
certainly does not have it does it go back to ``queued``. If the gateway
cannot be asked, the text waits, still ``sending``, and is asked about again
later: a text is delayed rather than doubled. Gateways that cannot look texts
up (the local one) have nothing to double, and their texts are requeued.
Bounded attempts apply throughout: a text is given up (``failed``, visible)
after SMS_MAX_ATTEMPTS hand-overs, never retried for ever.

Leases keep several processes safe: a sender stops taking texts from its
claimed batch once half the lease has gone (the rest go back to ``queued``),
so a lease only runs out on a text nobody is working on. The scheduler calls
``reconcile_in_flight`` at start-up; ``send_outbox`` calls it on every pass,
so texts a crashed process left behind are settled within a lease's length
even without a restart.

Settings (the app's config, else the environment): SMS_MAX_PER_SECOND (10;
per sending process), SMS_MAX_ATTEMPTS (5), SMS_RETRY_BASE_SECONDS (30),
SMS_RETRY_MAX_SECONDS (3600), SMS_SEND_LEASE_SECONDS (60: at least twice the
longest single send, which TWILIO_TIMEOUT_SECONDS bounds, plus a margin).
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.services.runtime import Runtime
from bot.services.status import OPTED_OUT_ERROR, carrier_opt_out
from bot.sms.gateway import FindsSent, SendError, Sent
from bot.store.db import transaction
from bot.store.models import Message, Patient, Practice

log = structlog.get_logger(__name__)

BATCH = 200
MAX_BATCHES = 50  # texts sent per call at most: BATCH * MAX_BATCHES
IN_FLIGHT = "sending"
KNOWN_SIDS_WINDOW = timedelta(days=7)  # recorded SIDs a lookup must not mistake for this text


@dataclass(frozen=True)
class OutboxSettings:
    max_per_second: float = 10.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutboxSettings:
        """The app's config; a key it lacks may come from the environment (optional tuning)."""

        def number(key: str, default: float) -> float:
            value = config.get(key)
            if value in (None, ""):
                value = os.environ.get(key)
            return float(value) if value not in (None, "") else default

        settings = cls(
            max_per_second=number("SMS_MAX_PER_SECOND", cls.max_per_second),
            max_attempts=int(number("SMS_MAX_ATTEMPTS", cls.max_attempts)),
            retry_base_seconds=number("SMS_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=number("SMS_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            lease_seconds=number("SMS_SEND_LEASE_SECONDS", cls.lease_seconds),
        )
        if settings.max_attempts < 1 or settings.lease_seconds <= 0:
            raise ValueError("SMS_MAX_ATTEMPTS must be at least 1, SMS_SEND_LEASE_SECONDS positive")
        return settings

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


def backoff_seconds(
    attempt: int,
    settings: OutboxSettings,
    rng: random.Random | Any = random,
    retry_after: float | None = None,
) -> float:
    """Exponential backoff with jitter: half to all of base * 2^(attempt-1), capped.

    Never sooner than the provider's Retry-After (itself capped).
    """
    ceiling = min(
        settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(attempt - 1, 0)
    )
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, min(retry_after, settings.retry_max_seconds))
    return delay


class Pacer:
    """A token bucket: at most ``rate`` sends a second, in bursts of at most ``burst``.

    ``clock`` and ``sleep`` are injectable so tests need not wait; ``wait``
    returns the seconds it slept. A ``rate`` of 0 or less means no pacing.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = self.capacity
        self.updated = clock()
        self._lock = threading.Lock()

    def wait(self) -> float:
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            if now > self.updated:
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            delay = (1 - self.tokens) / self.rate
            self.sleep(delay)
            # The token that arrived while we slept is spent at once.
            self.tokens = 0.0
            self.updated += delay
            return delay


_PACERS: weakref.WeakKeyDictionary[Any, Pacer] = weakref.WeakKeyDictionary()
_PACERS_LOCK = threading.Lock()


def _pacer_for(rt: Runtime, settings: OutboxSettings) -> Pacer | None:
    """One bucket per gateway per process, so back-to-back passes share the limit."""
    gateway = rt.gateway
    if not getattr(gateway, "paced", True) or settings.max_per_second <= 0:
        return None
    with _PACERS_LOCK:
        try:
            pacer = _PACERS.get(gateway)
            if pacer is None or pacer.rate != settings.max_per_second:
                pacer = _PACERS[gateway] = Pacer(settings.max_per_second)
        except TypeError:  # a gateway that cannot be weakly referenced
            pacer = Pacer(settings.max_per_second)
    return pacer


@dataclass(frozen=True)
class _Claim:
    """What a sender needs of one claimed text, and the token that proves the claim."""

    id: str
    phone: str
    body: str
    from_: str
    patient_id: str | None
    created_at: datetime
    attempts: int


def send_outbox(
    rt: Runtime,
    now: datetime,
    *,
    limit: int = BATCH,
    max_batches: int = MAX_BATCHES,
    pacer: Pacer | None = None,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Settle texts in doubt, then send every due text, oldest first; returns counts.

    Works through the outbox ``limit`` texts at a time (each batch claimed and
    committed before any is sent), until nothing is due or ``max_batches``
    batches have gone. ``sent`` and ``failed`` are always in the counts;
    ``retrying``, ``in_doubt``, ``deferred`` (given back unsent), ``canceled``,
    and from reconciliation ``recovered``, ``requeued`` and ``unsettled``,
    only when non-zero.
    """
    settings = OutboxSettings.from_config(rt.config)
    counts: dict[str, int] = {"sent": 0, "failed": 0}
    for key, value in reconcile_in_flight(rt, now).items():
        _bump(counts, key, value)
    for _ in range(max_batches):
        claims = _claim(rt, now, limit, settings)
        if not claims:
            break
        if pacer is None:
            pacer = _pacer_for(rt, settings)
        _send_batch(rt, claims, now, settings, pacer, rng or random, counts)
        if len(claims) < limit:
            break
    return counts


def _send_batch(
    rt: Runtime,
    claims: list[_Claim],
    now: datetime,
    settings: OutboxSettings,
    pacer: Pacer | None,
    rng: random.Random | Any,
    counts: dict[str, int],
) -> None:
    stop_taking = time.monotonic() + settings.lease_seconds / 2
    held: set[str] = set()  # phones whose earlier text did not go: later ones wait their turn
    for claim in claims:
        if claim.phone in held or time.monotonic() > stop_taking:
            _bump(counts, _release(rt, claim, now))
            continue
        if pacer is not None:
            pacer.wait()
        try:
            sent = rt.gateway.send(
                to=claim.phone, from_=claim.from_, body=claim.body, message_id=claim.id
            )
        except SendError as exc:
            _bump(counts, _record_failure(rt, claim, exc, now, settings, rng))
            held.add(claim.phone)
        except Exception as exc:
            # We cannot tell whether the text left: it stays in flight, to be looked up.
            # Only the error's class is logged: its message may quote the number or text.
            log.error("outbox.send_crashed", message_id=claim.id, error=type(exc).__name__)
            _bump(counts, "in_doubt")
            held.add(claim.phone)
        else:
            _bump(counts, _record_sent(rt, claim, sent, now))


def reconcile_in_flight(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Settle texts left ``sending`` whose lease has run out; returns counts by outcome.

    Each is looked up at the gateway (Twilio: the Messages list filtered by
    recipient and time, matched on sender and body, skipping SIDs already
    recorded). Found: its SID and status are recorded (``recovered``) and it is
    never sent again. Not found: back to ``queued`` (``requeued``), or
    ``failed`` when its attempts are used up. The gateway unreachable: it stays
    in flight with a new lease (``unsettled``) and is asked about again later.
    A gateway without ``find_sent`` (the local one) has its texts requeued.

    Safe to call at any time and from several processes: only texts whose
    lease has expired are touched, each by one caller (claimed with
    ``FOR UPDATE SKIP LOCKED`` and a fresh lease before the lookup).
    """
    settings = OutboxSettings.from_config(rt.config)
    counts: dict[str, int] = {}
    with transaction(rt.engine) as session:
        stale = session.exec(
            select(Message)
            .where(Message.direction == "outbound")
            .where(Message.status == IN_FLIGHT)
            .where(col(Message.provider_sid).is_(None))
            .where(or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= now))
            .order_by(col(Message.created_at), col(Message.position), col(Message.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in stale:
            message.next_attempt_at = now + settings.lease
            message.updated_at = now
        claims = _claims_of(session, stale)
    finder = rt.gateway if isinstance(rt.gateway, FindsSent) else None
    for claim in claims:
        found: Sent | None = None
        if finder is not None:
            try:
                found = finder.find_sent(
                    to=claim.phone,
                    from_=claim.from_,
                    body=claim.body,
                    since=claim.created_at,
                    exclude=_known_sids(rt, claim),
                )
            except SendError as exc:
                log.warning("outbox.lookup_failed", message_id=claim.id, error_code=exc.code)
                _bump(counts, "unsettled")
                continue
        _bump(counts, _settle(rt, claim, found, now, settings))
    if counts:
        log.info("outbox.reconciled", **counts)
    return counts


# -- claiming -------------------------------------------------------------------------------


def _claim(rt: Runtime, now: datetime, limit: int, settings: OutboxSettings) -> list[_Claim]:
    earlier = aliased(Message)
    held_back = (
        select(earlier.id)
        .where(earlier.phone == Message.phone)
        .where(earlier.direction == "outbound")
        .where(col(earlier.provider_sid).is_(None))
        .where(
            or_(
                earlier.status == IN_FLIGHT,
                and_(earlier.status == "queued", col(earlier.next_attempt_at) > now),
            )
        )
        .where(
            or_(
                col(earlier.created_at) < col(Message.created_at),
                and_(
                    col(earlier.created_at) == col(Message.created_at),
                    col(earlier.position) < col(Message.position),
                ),
            )
        )
        .exists()
    )
    with transaction(rt.engine) as session:
        due = session.exec(
            select(Message)
            .where(Message.direction == "outbound")
            .where(Message.status == "queued")
            .where(col(Message.provider_sid).is_(None))
            .where(or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= now))
            .where(~held_back)
            .order_by(col(Message.created_at), col(Message.position), col(Message.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in due:
            message.status = IN_FLIGHT
            message.attempts = (message.attempts or 0) + 1
            message.next_attempt_at = now + settings.lease
            message.updated_at = now
        return _claims_of(session, due)


def _claims_of(session: Session, messages: list[Message]) -> list[_Claim]:
    practice_ids = {m.practice_id for m in messages if m.practice_id}
    numbers = dict(
        session.exec(
            select(Practice.id, Practice.sms_number).where(col(Practice.id).in_(practice_ids))
        ).all()
        if practice_ids
        else []
    )
    return [
        _Claim(
            id=m.id,
            phone=m.phone,
            body=m.body,
            from_=numbers.get(m.practice_id or "", ""),
            patient_id=m.patient_id,
            created_at=m.created_at,
            attempts=m.attempts,
        )
        for m in messages
    ]


def _own(session: Session, claim: _Claim) -> Message | None:
    """The claimed row, locked, if the claim still holds (nobody settled it meanwhile)."""
    message = session.exec(select(Message).where(Message.id == claim.id).with_for_update()).first()
    if (
        message is None
        or message.status != IN_FLIGHT
        or message.provider_sid is not None
        or message.attempts != claim.attempts
    ):
        log.warning("outbox.claim_lost", message_id=claim.id)
        return None
    return message


# -- outcomes -------------------------------------------------------------------------------


def _record_sent(rt: Runtime, claim: _Claim, sent: Sent, now: datetime) -> str:
    with transaction(rt.engine) as session:
        message = _own(session, claim)
        if message is None:
            return "lost_claim"
        _accepted(session, rt, message, sent, now)
    return "sent"


def _accepted(session: Session, rt: Runtime, message: Message, sent: Sent, now: datetime) -> None:
    message.provider_sid = sent.provider_sid
    message.status = sent.status
    message.error_code = sent.error_code
    message.sent_at = now
    message.next_attempt_at = None
    message.updated_at = now
    if sent.error_code == OPTED_OUT_ERROR:
        _opt_out(session, rt, message, now)


def _record_failure(
    rt: Runtime,
    claim: _Claim,
    exc: SendError,
    now: datetime,
    settings: OutboxSettings,
    rng: random.Random | Any,
) -> str:
    with transaction(rt.engine) as session:
        message = _own(session, claim)
        if message is None:
            return "lost_claim"
        message.error_code = exc.code
        message.updated_at = now
        if exc.permanent:
            message.status = "failed"
            message.next_attempt_at = None
            log.warning("outbox.failed", message_id=claim.id, error_code=exc.code)
            if exc.code == OPTED_OUT_ERROR:
                _opt_out(session, rt, message, now)
            return "failed"
        delay = backoff_seconds(claim.attempts, settings, rng, exc.retry_after)
        if exc.in_doubt:
            # Stays in flight, looked up before any resend: not before a lease has
            # passed, so that a request Twilio was still working on has finished.
            delay = max(delay, settings.lease_seconds)
        message.next_attempt_at = now + timedelta(seconds=delay)
        if exc.in_doubt:
            log.warning(
                "outbox.in_doubt",
                message_id=claim.id,
                attempt=claim.attempts,
                error_code=exc.code,
                lookup_in_seconds=round(delay, 1),
            )
            return "in_doubt"
        if claim.attempts >= settings.max_attempts:
            message.status = "failed"
            message.next_attempt_at = None
            log.warning(
                "outbox.gave_up", message_id=claim.id, attempts=claim.attempts, error_code=exc.code
            )
            return "failed"
        if not _requeue(session, message):
            return "canceled"
        log.info(
            "outbox.retrying",
            message_id=claim.id,
            attempt=claim.attempts,
            error_code=exc.code,
            retry_in_seconds=round(delay, 1),
        )
        return "retrying"


def _release(rt: Runtime, claim: _Claim, now: datetime) -> str:
    """Give back a claimed text that was not handed over: this attempt does not count."""
    with transaction(rt.engine) as session:
        message = _own(session, claim)
        if message is None:
            return "lost_claim"
        message.attempts = claim.attempts - 1
        message.next_attempt_at = None
        message.updated_at = now
        return "deferred" if _requeue(session, message) else "canceled"


def _settle(
    rt: Runtime, claim: _Claim, found: Sent | None, now: datetime, settings: OutboxSettings
) -> str:
    with transaction(rt.engine) as session:
        message = _own(session, claim)
        if message is None:
            return "lost_claim"
        if found is not None:
            _accepted(session, rt, message, found, now)
            log.info("outbox.recovered", message_id=claim.id, message_sid=found.provider_sid)
            return "recovered"
        message.updated_at = now
        message.next_attempt_at = None
        if message.attempts >= settings.max_attempts:
            message.status = "failed"
            log.warning("outbox.gave_up", message_id=claim.id, attempts=message.attempts)
            return "failed"
        if not _requeue(session, message):
            return "canceled"
        log.info("outbox.requeued", message_id=claim.id)
        return "requeued"


def _requeue(session: Session, message: Message) -> bool:
    """Back to ``queued``; or ``canceled`` if the patient opted out since it was written.

    An opt-out cancels the queued texts it finds; one that was in flight then
    escaped that sweep and must not go out when it comes back.
    """
    patient = session.get(Patient, message.patient_id) if message.patient_id else None
    if (
        patient is not None
        and patient.opted_out
        and (patient.opted_out_at is None or patient.opted_out_at >= message.created_at)
    ):
        message.status = "canceled"
        message.next_attempt_at = None
        log.info("outbox.canceled_after_opt_out", message_id=message.id)
        return False
    message.status = "queued"
    return True


def _known_sids(rt: Runtime, claim: _Claim) -> set[str]:
    with transaction(rt.engine, read_only=True) as session:
        return {
            sid
            for sid in session.exec(
                select(Message.provider_sid)
                .where(Message.phone == claim.phone)
                .where(Message.direction == "outbound")
                .where(col(Message.provider_sid).is_not(None))
                .where(col(Message.created_at) >= claim.created_at - KNOWN_SIDS_WINDOW)
            ).all()
            if sid
        }


def _opt_out(session: Session, rt: Runtime, message: Message, now: datetime) -> None:
    """Twilio says the recipient replied STOP to this sender: opt them out here too."""
    if not message.patient_id:
        return
    patient = session.exec(
        select(Patient).where(Patient.id == message.patient_id).with_for_update()
    ).first()
    if patient is not None:
        carrier_opt_out(session, rt, patient, now)
        log.info("outbox.carrier_opt_out", message_id=message.id, patient_id=patient.id)


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by
