"""The outbox: outbound texts written with the state change that caused them, sent exactly once.

A text is a ``message`` row with status ``queued`` written in the same
transaction as the conversation change, so a crash can never leave a state
change without its text or a text without its state change.

An unsent text (no provider SID yet) is always in one of three states:

* ``queued``: waiting for its turn (``next_attempt_at`` empty or past); nobody
  holds it, and no earlier hand-over of it can still turn up at the provider;
* ``sending`` with a ``claim_token``: *held*. Only the process holding that
  token may hand it over, record what came of it, release it or look it up;
  its lease (``claimed_until``) says until when it must show it is alive;
* ``sending`` without a token: *in doubt*. It was handed over
  (``handed_over_at``) and no answer came (a 5xx, a timeout, a crash). It is
  looked up at the provider (``next_attempt_at``) before it may ever go again.

``send_outbox``, one pass:

1. ``reconcile_in_flight``: texts whose holder's lease ran out, and texts in
   doubt whose lookup is due, are taken over with a fresh token. One never
   handed over (its holder died first) goes back to ``queued`` at once. One
   handed over is looked up (Twilio's Messages list, by recipient, sender,
   time and body, skipping SIDs already recorded): found, its SID is recorded
   and it is never sent again; not found, it goes back to ``queued`` only once
   the search is conclusive (below), else it waits in doubt and is asked
   about again;
2. claims a small batch of due texts (one second's worth at
   SMS_MAX_PER_SECOND) with a new token and a lease from the moment of the
   claim (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite;
   texts to one phone go in the order they were written, so a later one waits
   while an earlier one is held, in doubt or backing off);
3. works through the batch a chunk at a time (HAND_OVER_CHUNK texts unpaced,
   one when paced, after the pacer's wait). One transaction *hands the chunk
   over*: a compare-and-set on each text's token, in one statement, that counts
   the attempt, stamps ``handed_over_at`` and renews its lease (and the batch's,
   once a quarter of a lease has gone since the last renewal), committed
   *before* the provider is called (a text whose token is no longer held is not
   sent); the same transaction records what the previous chunk's texts were
   accepted as. Then each text of the chunk goes to the gateway with no
   transaction open (a text sent more than HAND_OVER_SPREAD after its recorded
   hand-over is first stamped afresh; one whose phone was held back meanwhile is
   given back unsent, its attempt uncounted). Outcomes, again only while the
   token is held (failures at once, text by text; acceptances with the next
   chunk, in one statement):

   * accepted: the SID and status, ``sent_at``; the claim ends;
   * transient failure (429, 401, a connection never made): back to
     ``queued`` after exponential backoff with jitter (at least Retry-After);
     after SMS_MAX_ATTEMPTS attempts, ``failed`` with the last error code. A
     connection never made is not an attempt (nothing reached the provider);
   * in doubt (5xx, no answer in time, a crash in the gateway code): in doubt,
     looked up once the search can be conclusive;
   * permanent failure (any other 4xx): ``failed`` at once with the
     provider's code. 21610 (the recipient replied STOP to this sender) also
     opts the patient out: pending invitations and queued texts are cancelled
     and an open questionnaire ends.

   A SID is a fact: whoever learns it (the sender, even after losing its
   claim; a lookup; a delivery report naming the text, ``bot.services.status``)
   records it, and that ends every claim on the text for good.

Why this never doubles (README, "Outbox guarantee"): a text is handed over only
under a held token, and handing over is recorded before the provider is
called; a takeover replaces the token, so the old holder can neither hand it
over nor record anything but a SID afterwards. A takeover that finds a
hand-over recorded looks the text up, and a lookup that finds nothing counts
only after ``handed_over_at`` + HAND_OVER_SPREAD + the gateway's timeout +
SMS_LOOKUP_DELAY_SECONDS
(Twilio's list may lag behind a create, by an amount Twilio does not
document). A crash part-way through a chunk leaves its unsent texts recorded as handed
over: they are looked up like the rest, never resent unseen (at the cost of one
attempt each). Leases only decide how soon a dead holder's texts are taken over;
a live holder renews them as it works through its batch, and even one taken for
dead cannot double. Why nothing is lost: a held text whose holder dies is
taken over when its lease runs out; attempts are counted only for hand-overs,
so claims lost to crashes before their hand-over never use them up; a text is only given up
(``failed``) after SMS_MAX_ATTEMPTS hand-overs that may have reached the
provider, or a permanent refusal.

Gateways without ``find_sent`` (the local one) have nothing to look up and
nothing to double (a resend keeps its id): their texts in doubt go straight
back to ``queued``.

Settings (the app's config, else the environment): SMS_MAX_PER_SECOND (10;
per sending process), SMS_MAX_ATTEMPTS (5), SMS_RETRY_BASE_SECONDS (30),
SMS_RETRY_MAX_SECONDS (3600), SMS_SEND_LEASE_SECONDS (60: how soon a dead
sender's texts are taken over; longer than one send, which
TWILIO_TIMEOUT_SECONDS bounds, plus one pacing interval), and
SMS_LOOKUP_DELAY_SECONDS (120: how long Twilio's list may take to show a new
text).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, func, literal, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.services.runtime import Runtime
from bot.services.status import OPTED_OUT_ERROR, carrier_opt_out, record_acceptance
from bot.sms.gateway import FindsSent, SendError, Sent
from bot.store.db import transaction
from bot.store.models import Message, Patient, Practice

log = structlog.get_logger(__name__)

BATCH = 200  # texts claimed at once when sending is not paced, and reconciled at once
MAX_PER_PASS = 25_000  # texts claimed per call at most: 10,000 due invitations' openings
IN_FLIGHT = "sending"
RENEW_AFTER_FRACTION = 4  # a batch's leases are renewed once a quarter of a lease has passed
KNOWN_SIDS_WINDOW = timedelta(days=7)  # recorded SIDs a lookup must not mistake for this text
HAND_OVER_CHUNK = 20  # texts handed over in one statement when sending is not paced
# A text is sent at most this long after its recorded hand-over (else it is stamped afresh).
HAND_OVER_SPREAD = timedelta(seconds=1)


@dataclass(frozen=True)
class OutboxSettings:
    max_per_second: float = 10.0
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 60.0
    lookup_delay_seconds: float = 120.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def batch_size(self, paced: bool) -> int:
        """One second's worth of texts when paced: a claim never outlives its sending by much."""
        if not paced or self.max_per_second <= 0:
            return BATCH
        return max(1, min(BATCH, math.ceil(self.max_per_second)))

    def conclusive_after(self, gateway: Any) -> timedelta:
        """How long after a hand-over a lookup that finds nothing proves the text is not there."""
        return (
            timedelta(seconds=float(getattr(gateway, "timeout", 0)) + self.lookup_delay_seconds)
            + HAND_OVER_SPREAD
        )


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


class PassClock:
    """The moment of each step of one pass: the pass's ``now`` plus the time elapsed since.

    A pass can run for minutes (pacing, a slow provider); leases and hand-over
    times are taken from the moment of each claim and hand-over, never from
    the start of the pass. Elapsed time comes from the app's clock when one is
    fixed (``PROMBOT_CLOCK``, in tests: time then moves only when the test
    moves it), else from the monotonic clock.
    """

    def __init__(self, now: datetime, config: Mapping[str, Any]) -> None:
        self.start = now
        fixed = config.get("PROMBOT_CLOCK")
        if callable(fixed):
            began = fixed()
            self._elapsed: Callable[[], timedelta] = lambda: fixed() - began
        else:
            began_monotonic = time.monotonic()
            self._elapsed = lambda: timedelta(seconds=time.monotonic() - began_monotonic)

    def __call__(self) -> datetime:
        return self.start + max(self._elapsed(), timedelta(0))


@dataclass(frozen=True)
class _Claim:
    """What a holder needs of one claimed text, and the token that proves the claim."""

    id: str
    token: str
    phone: str
    body: str
    from_: str
    patient_id: str | None
    created_at: datetime
    handed_over_at: datetime | None


def _new_token() -> str:
    return uuid.uuid4().hex


def send_outbox(
    rt: Runtime,
    now: datetime,
    *,
    limit: int | None = None,
    max_batches: int | None = None,
    pacer: Pacer | None = None,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Settle what is in doubt, then send every due text, oldest first; returns counts.

    Works through the outbox ``limit`` texts at a time (default: one second's
    worth at the configured pace, or BATCH when unpaced), each batch claimed
    and committed before any is sent, until nothing is due, ``max_batches``
    batches or MAX_PER_PASS texts have gone. ``sent`` and ``failed`` are
    always in the counts; ``retrying``, ``in_doubt``, ``deferred`` (given back
    unsent), ``canceled``, ``settled_elsewhere`` (its SID was recorded
    meanwhile: by a delivery report while the answer was awaited, or by the
    scheduler that took it over), ``lost_claim``, ``duplicate``, and from
    reconciliation ``recovered``, ``requeued``, ``unconfirmed`` and
    ``unsettled``, only when non-zero.
    """
    settings = OutboxSettings(**rt.settings.delivery())
    clock = PassClock(now, rt.config)
    counts: dict[str, int] = {"sent": 0, "failed": 0}
    for key, value in _reconcile(rt, clock, settings, BATCH).items():
        _bump(counts, key, value)
    if pacer is None:
        pacer = _pacer_for(rt, settings)
    size = limit or settings.batch_size(paced=pacer is not None)
    batches = claimed = 0
    while max_batches is None or batches < max_batches:
        claims = _claim(rt, clock(), size, settings)
        if not claims:
            break
        _send_batch(rt, claims, clock, settings, pacer, rng or random, counts)
        batches += 1
        claimed += len(claims)
        if len(claims) < size or claimed >= MAX_PER_PASS:
            break
    return counts


def _send_batch(
    rt: Runtime,
    claims: list[_Claim],
    clock: PassClock,
    settings: OutboxSettings,
    pacer: Pacer | None,
    rng: random.Random | Any,
    counts: dict[str, int],
) -> None:
    """Hand over and send one claimed batch, a chunk at a time, in order.

    Each chunk is one transaction (``_hand_over_chunk``): it records the SIDs
    the previous chunk's texts were given and hands this chunk over, both before
    any of this chunk is sent. Paced, a chunk is one text (the pacer, not the
    database, sets the speed, and a hand-over is stamped just before its send);
    unpaced, HAND_OVER_CHUNK texts. Failures are recorded at once, text by text.
    """
    held_back: set[str] = set()  # phones whose earlier text did not go: later ones wait their turn
    renewed = clock()  # the batch's leases were taken (or last renewed) then
    size = 1 if pacer is not None else HAND_OVER_CHUNK
    accepted: list[tuple[_Claim, Sent]] = []  # sent, their SIDs not yet written
    waiting = list(claims)
    try:
        while waiting:
            chunk: list[_Claim] = []
            while waiting and len(chunk) < size:
                claim = waiting.pop(0)
                if claim.phone in held_back:
                    _bump(counts, _release(rt, claim, clock()))
                else:
                    chunk.append(claim)
            if not chunk:
                continue
            if pacer is not None:
                pacer.wait()
            moment = clock()
            renew_batch = moment - renewed >= settings.lease / RENEW_AFTER_FRACTION
            if renew_batch:
                renewed = moment
            refused = _hand_over_chunk(
                rt, chunk, accepted, moment, settings, counts, renew_batch=renew_batch
            )
            accepted = []
            for index, claim in enumerate(chunk):
                if claim.id in refused:
                    _bump(counts, refused[claim.id])
                    held_back.add(claim.phone)
                    continue
                if claim.phone in held_back:
                    # Handed over with its chunk, but an earlier text to its phone did not go.
                    _bump(counts, _withdraw(rt, claim, clock()))
                    continue
                if clock() - moment > HAND_OVER_SPREAD:
                    # A slow provider: stamp the rest of the chunk afresh before sending it,
                    # so that no hand-over is recorded much earlier than it happened.
                    moment = clock()
                    rest = [c for c in chunk[index:] if c.id not in refused]
                    refused |= _hand_over_chunk(
                        rt, rest, accepted, moment, settings, counts, again=True
                    )
                    accepted = []
                    if claim.id in refused:
                        _bump(counts, refused[claim.id])
                        held_back.add(claim.phone)
                        continue
                try:
                    sent = rt.gateway.send(
                        to=claim.phone, from_=claim.from_, body=claim.body, message_id=claim.id
                    )
                except SendError as exc:
                    _bump(counts, _record_failure(rt, claim, exc, clock(), settings, rng))
                    held_back.add(claim.phone)
                except Exception as exc:
                    # We cannot tell whether the text left: it is in doubt, to be looked up.
                    # Only the error's class is logged: its message may quote the number or text.
                    log.error("outbox.send_crashed", message_id=claim.id, error=type(exc).__name__)
                    _bump(counts, _record_in_doubt(rt, claim, None, clock(), settings, rng))
                    held_back.add(claim.phone)
                else:
                    accepted.append((claim, sent))
    finally:
        if accepted:
            # An error above leaves these to reconciliation otherwise (looked up, found).
            _hand_over_chunk(rt, [], accepted, clock(), settings, counts)


def reconcile_in_flight(rt: Runtime, now: datetime, *, limit: int = BATCH) -> dict[str, int]:
    """Take over texts whose holder's lease ran out and texts in doubt whose lookup is due.

    Returns counts by outcome: ``requeued`` (never handed over, or looked up
    conclusively and not found: back to ``queued``), ``recovered`` (found at
    the provider: its SID recorded, never sent again), ``unconfirmed`` (not
    found, but too soon after its hand-over to be sure: asked about again
    later), ``unsettled`` (the provider could not be asked), ``failed``
    (not found and its attempts used up), ``canceled`` (the patient opted out
    meanwhile). Safe at any time from several processes: each text is taken
    over by one caller, with a token of its own.
    """
    settings = OutboxSettings(**rt.settings.delivery())
    return _reconcile(rt, PassClock(now, rt.config), settings, limit)


def _reconcile(
    rt: Runtime, clock: PassClock, settings: OutboxSettings, limit: int
) -> dict[str, int]:
    counts: dict[str, int] = {}
    finder = rt.gateway if isinstance(rt.gateway, FindsSent) else None
    token = _new_token()
    with transaction(rt.engine) as session:
        moment = clock()
        stale = session.exec(
            select(Message)
            .where(Message.status == IN_FLIGHT)
            .where(Message.direction == "outbound")
            .where(_unsent(Message))
            .where(
                or_(
                    and_(
                        col(Message.claim_token).is_(None),
                        or_(
                            col(Message.next_attempt_at).is_(None),
                            col(Message.next_attempt_at) <= moment,
                        ),
                    ),
                    and_(
                        col(Message.claim_token).is_not(None),
                        or_(
                            col(Message.claimed_until).is_(None),
                            col(Message.claimed_until) <= moment,
                        ),
                    ),
                )
            )
            .order_by(col(Message.created_at), col(Message.position), col(Message.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        to_look_up: list[Message] = []
        for message in stale:
            if message.claim_token is not None:
                log.info("outbox.lease_expired", message_id=message.id)
            if message.handed_over_at is None or finder is None:
                # Never handed over (its holder died before), or nothing to look up.
                _end_claim(message, moment)
                message.handed_over_at = None
                outcome = "requeued" if _requeue(session, message) else "canceled"
                log.info("outbox.requeued", message_id=message.id, looked_up=False)
                _bump(counts, outcome)
                continue
            message.claim_token = token
            message.claimed_until = moment + settings.lease
            message.updated_at = moment
            to_look_up.append(message)
        claims = _claims_of(session, to_look_up)
    for claim in claims:
        _bump(counts, _look_up(rt, finder, claim, clock, settings))
    if counts:
        log.info("outbox.reconciled", **counts)
    return counts


def _look_up(
    rt: Runtime,
    finder: FindsSent | None,
    claim: _Claim,
    clock: PassClock,
    settings: OutboxSettings,
) -> str:
    assert finder is not None and claim.handed_over_at is not None
    if not _renew(rt, claim.token, clock(), settings):
        return "lost_claim"
    try:
        found = finder.find_sent(
            to=claim.phone,
            from_=claim.from_,
            body=claim.body,
            since=claim.handed_over_at,
            exclude=_known_sids(rt, claim),
        )
    except SendError as exc:
        log.warning("outbox.lookup_failed", message_id=claim.id, error_code=exc.code)
        return _after_lookup(rt, claim, None, clock(), settings, failed=True)
    return _after_lookup(rt, claim, found, clock(), settings, failed=False)


# -- claiming -------------------------------------------------------------------------------


def _unsent(message: Any) -> Any:
    """No provider SID yet, written so that no planner walks the unique SID index for it.

    ``provider_sid IS NULL`` matches that index, and SQLite takes it: it then reads
    every unsent text (the whole queue) for each claim, and again for each
    candidate in the "an earlier text waits" test, which made claiming grow with
    the square of the queue. No SID is ever the empty string (``bot.web.webhook.SID``).
    """
    return func.coalesce(message.provider_sid, "") == ""


def claim_query(moment: datetime, limit: int) -> Any:
    """The due texts, oldest first, that no earlier text to the same phone holds back.

    It walks ``ix_message_outbox`` (status, direction, created_at, position, id) in
    order and stops after ``limit``; the "earlier text waits" test is one look-up in
    ``ix_message_phone_created`` per candidate.
    """
    earlier = aliased(Message)
    held_back = (
        select(earlier.id)
        .where(earlier.phone == Message.phone)
        .where(earlier.direction == "outbound")
        .where(_unsent(earlier))
        .where(
            or_(
                earlier.status == IN_FLIGHT,
                and_(earlier.status == "queued", col(earlier.next_attempt_at) > moment),
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
    return (
        select(Message)
        .where(Message.status == "queued")
        .where(Message.direction == "outbound")
        .where(_unsent(Message))
        .where(col(Message.claim_token).is_(None))
        .where(or_(col(Message.next_attempt_at).is_(None), col(Message.next_attempt_at) <= moment))
        .where(~held_back)
        .order_by(col(Message.created_at), col(Message.position), col(Message.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _claim(rt: Runtime, moment: datetime, limit: int, settings: OutboxSettings) -> list[_Claim]:
    token = _new_token()
    with transaction(rt.engine) as session:
        due = session.exec(claim_query(moment, limit)).all()
        for message in due:
            message.status = IN_FLIGHT
            message.claim_token = token
            message.claimed_until = moment + settings.lease
            message.next_attempt_at = None
            message.updated_at = moment
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
            token=m.claim_token or "",
            phone=m.phone,
            body=m.body,
            from_=numbers.get(m.practice_id or "", ""),
            patient_id=m.patient_id,
            created_at=m.created_at,
            handed_over_at=m.handed_over_at,
        )
        for m in messages
    ]


def _held(session: Session, claim: _Claim) -> Message | None:
    """The claimed row, locked, if the claim's token is still held: the compare of every write."""
    message = session.exec(select(Message).where(Message.id == claim.id).with_for_update()).first()
    if (
        message is None
        or message.claim_token != claim.token
        or message.status != IN_FLIGHT
        or message.provider_sid is not None
    ):
        if message is not None and message.provider_sid is not None:
            log.info("outbox.settled_by_report", message_id=claim.id)
        else:
            log.warning("outbox.claim_lost", message_id=claim.id)
        return None
    return message


def _not_held(session: Session, claim: _Claim) -> str:
    """Why a claim no longer holds: its SID was recorded by someone else, or a takeover."""
    sid = session.exec(select(Message.provider_sid).where(Message.id == claim.id)).first()
    return "settled_elsewhere" if sid else "lost_claim"


def _renew(rt: Runtime, token: str, moment: datetime, settings: OutboxSettings) -> bool:
    """Extend the lease of every text still held under ``token``; False if none is."""
    with transaction(rt.engine) as session:
        result = session.exec(
            update(Message)
            .where(col(Message.claim_token) == token)
            .where(col(Message.provider_sid).is_(None))
            .values(claimed_until=moment + settings.lease)
        )
        return bool(result.rowcount)


def _hand_over_chunk(
    rt: Runtime,
    chunk: list[_Claim],
    accepted: list[tuple[_Claim, Sent]],
    moment: datetime,
    settings: OutboxSettings,
    counts: dict[str, int],
    *,
    renew_batch: bool = False,
    again: bool = False,
) -> dict[str, str]:
    """One transaction: record the SIDs in ``accepted``, then hand ``chunk`` over.

    Handing over is a compare-and-set on each text's token, in one statement:
    it counts the attempt (not ``again``: a fresh stamp for texts already
    handed over but not yet sent), stamps ``handed_over_at`` and renews the
    lease; with ``renew_batch`` the rest of the batch's leases are renewed too.
    Every row is written at most once in the transaction: a second write to a
    row makes PostgreSQL re-check its foreign keys, which would wait on any
    transaction holding its patient (a dispatch, an inbound text).

    Returns, for each text of the chunk that must not be sent, why not.
    """
    table = Message.__table__.c
    refused: dict[str, str] = {}
    with transaction(rt.engine) as session:
        for outcome in _write_accepted(session, rt, accepted, moment):
            _bump(counts, outcome)
        if not chunk:
            return refused
        token = chunk[0].token
        ids = [claim.id for claim in chunk]
        values: dict[str, Any] = {
            "handed_over_at": moment,
            "claimed_until": moment + settings.lease,
            "updated_at": moment,
        }
        if not again:
            values["attempts"] = func.coalesce(table.attempts, 0) + 1
        held = set(
            session.exec(
                update(Message.__table__)
                .where(table.id.in_(ids))
                .where(table.claim_token == token)
                .where(table.status == IN_FLIGHT)
                .where(table.provider_sid.is_(None))
                .values(**values)
                .returning(table.id)
            ).scalars()
        )
        lost = [i for i in ids if i not in held]
        if lost:
            sids = dict(
                session.exec(
                    select(Message.id, Message.provider_sid).where(col(Message.id).in_(lost))
                ).all()
            )
            for message_id in lost:
                if sids.get(message_id):
                    log.info("outbox.settled_by_report", message_id=message_id)
                    refused[message_id] = "settled_elsewhere"
                else:
                    log.warning("outbox.claim_lost", message_id=message_id)
                    refused[message_id] = "lost_claim"
        if renew_batch:
            session.exec(
                update(Message.__table__)
                .where(table.claim_token == token)
                .where(table.id.not_in(ids))
                .where(table.provider_sid.is_(None))
                .values(claimed_until=moment + settings.lease)
            )
    return refused


def _write_accepted(
    session: Session, rt: Runtime, accepted: list[tuple[_Claim, Sent]], moment: datetime
) -> list[str]:
    """Record the SIDs the provider gave: one read and one (batched) update for them all.

    A SID is a fact: it is recorded even when the claim was lost meanwhile (that
    stops whoever took over from handing the text over again).
    """
    if not accepted:
        return []
    table = Message.__table__.c
    rows = {
        row.id: row
        for row in session.exec(
            select(Message.id, Message.provider_sid, Message.claim_token)
            .where(col(Message.id).in_([claim.id for claim, _ in accepted]))
            .with_for_update()
        ).all()
    }
    outcomes: list[str] = []
    plain: list[dict[str, Any]] = []
    for claim, sent in accepted:
        row = rows.get(claim.id)
        if row is None:
            outcomes.append("lost_claim")
        elif row.provider_sid is None:
            if row.claim_token != claim.token:
                log.warning("outbox.sid_after_claim_lost", message_id=claim.id)
            if sent.error_code == OPTED_OUT_ERROR:
                message = session.get(Message, claim.id)
                assert message is not None
                _accepted(session, rt, message, sent, moment)
            else:
                plain.append(
                    {
                        "b_id": claim.id,
                        "b_sid": sent.provider_sid,
                        "b_status": sent.status,
                        "b_error": sent.error_code,
                    }
                )
            outcomes.append("sent")
        elif row.provider_sid == sent.provider_sid:
            outcomes.append("sent")  # a delivery report named it first
        else:
            log.error(
                "outbox.sent_twice",
                message_id=claim.id,
                message_sid=sent.provider_sid,
                recorded_sid=row.provider_sid,
            )
            outcomes.append("duplicate")
    if plain:
        # The same fields as ``record_acceptance``, for many rows in one statement.
        session.connection().execute(
            update(Message.__table__)
            .where(table.id == bindparam("b_id"))
            .where(table.provider_sid.is_(None))
            .values(
                provider_sid=bindparam("b_sid"),
                status=bindparam("b_status"),
                error_code=bindparam("b_error"),
                sent_at=func.coalesce(table.sent_at, literal(moment, table.sent_at.type)),
                next_attempt_at=None,
                claim_token=None,
                claimed_until=None,
                handed_over_at=None,
                updated_at=moment,
            ),
            plain,
        )
    return outcomes


def _withdraw(rt: Runtime, claim: _Claim, moment: datetime) -> str:
    """Give back a text handed over with its chunk but never sent: as if never handed over."""
    with transaction(rt.engine) as session:
        message = _held(session, claim)
        if message is None:
            return _not_held(session, claim)
        message.attempts = max((message.attempts or 0) - 1, 0)
        message.handed_over_at = None
        _end_claim(message, moment)
        message.next_attempt_at = None
        return "deferred" if _requeue(session, message) else "canceled"


def _end_claim(message: Message, moment: datetime) -> None:
    message.claim_token = None
    message.claimed_until = None
    message.updated_at = moment


# -- outcomes -------------------------------------------------------------------------------


def _accepted(session: Session, rt: Runtime, message: Message, sent: Sent, now: datetime) -> None:
    record_acceptance(
        message, sid=sent.provider_sid, status=sent.status, error_code=sent.error_code, now=now
    )
    if sent.error_code == OPTED_OUT_ERROR:
        _opt_out(session, rt, message, now)


def _record_failure(
    rt: Runtime,
    claim: _Claim,
    exc: SendError,
    moment: datetime,
    settings: OutboxSettings,
    rng: random.Random | Any,
) -> str:
    if exc.in_doubt:
        return _record_in_doubt(rt, claim, exc, moment, settings, rng)
    with transaction(rt.engine) as session:
        message = _held(session, claim)
        if message is None:
            return _not_held(session, claim)
        # Certainly not accepted: this hand-over is settled.
        message.handed_over_at = None
        if not exc.reached:
            message.attempts -= 1  # nothing reached the provider: not an attempt
        message.error_code = exc.code
        _end_claim(message, moment)
        if exc.permanent:
            message.status = "failed"
            message.next_attempt_at = None
            log.warning("outbox.failed", message_id=claim.id, error_code=exc.code)
            if exc.code == OPTED_OUT_ERROR:
                _opt_out(session, rt, message, moment)
            return "failed"
        if message.attempts >= settings.max_attempts:
            message.status = "failed"
            message.next_attempt_at = None
            log.warning(
                "outbox.gave_up",
                message_id=claim.id,
                attempts=message.attempts,
                error_code=exc.code,
            )
            return "failed"
        attempt = message.attempts if exc.reached else message.attempts + 1
        delay = backoff_seconds(attempt, settings, rng, exc.retry_after)
        message.next_attempt_at = moment + timedelta(seconds=delay)
        if not _requeue(session, message):
            return "canceled"
        log.info(
            "outbox.retrying",
            message_id=claim.id,
            attempt=message.attempts,
            reached=exc.reached,
            error_code=exc.code,
            retry_in_seconds=round(delay, 1),
        )
        return "retrying"


def _record_in_doubt(
    rt: Runtime,
    claim: _Claim,
    exc: SendError | None,
    moment: datetime,
    settings: OutboxSettings,
    rng: random.Random | Any,
) -> str:
    """The provider may have the text: nobody holds it until it has been looked up."""
    with transaction(rt.engine) as session:
        message = _held(session, claim)
        if message is None:
            return _not_held(session, claim)
        assert message.handed_over_at is not None
        lookup_at = max(
            moment + timedelta(seconds=backoff_seconds(message.attempts, settings, rng)),
            message.handed_over_at + settings.conclusive_after(rt.gateway),
        )
        message.error_code = exc.code if exc is not None else message.error_code
        message.next_attempt_at = lookup_at
        _end_claim(message, moment)
        log.warning(
            "outbox.in_doubt",
            message_id=claim.id,
            attempt=message.attempts,
            error_code=exc.code if exc is not None else None,
            lookup_in_seconds=round((lookup_at - moment).total_seconds(), 1),
        )
        return "in_doubt"


def _release(rt: Runtime, claim: _Claim, moment: datetime) -> str:
    """Give back a claimed text that was not handed over: nothing about it changes."""
    with transaction(rt.engine) as session:
        message = _held(session, claim)
        if message is None:
            return _not_held(session, claim)
        _end_claim(message, moment)
        message.next_attempt_at = None
        return "deferred" if _requeue(session, message) else "canceled"


def _after_lookup(
    rt: Runtime,
    claim: _Claim,
    found: Sent | None,
    moment: datetime,
    settings: OutboxSettings,
    *,
    failed: bool,
) -> str:
    assert claim.handed_over_at is not None
    with transaction(rt.engine) as session:
        message = _held(session, claim)
        if message is None:
            return _not_held(session, claim)
        if found is not None:
            _accepted(session, rt, message, found, moment)
            log.info("outbox.recovered", message_id=claim.id, message_sid=found.provider_sid)
            return "recovered"
        _end_claim(message, moment)
        if failed:
            message.next_attempt_at = moment + settings.lease  # ask again later
            return "unsettled"
        conclusive_at = claim.handed_over_at + settings.conclusive_after(rt.gateway)
        if moment < conclusive_at:
            # Twilio's list may not show it yet: absence proves nothing until then.
            message.next_attempt_at = conclusive_at
            log.info("outbox.unconfirmed", message_id=claim.id)
            return "unconfirmed"
        message.handed_over_at = None
        message.next_attempt_at = None
        if message.attempts >= settings.max_attempts:
            message.status = "failed"
            log.warning("outbox.gave_up", message_id=claim.id, attempts=message.attempts)
            return "failed"
        if not _requeue(session, message):
            return "canceled"
        log.info("outbox.requeued", message_id=claim.id, looked_up=True)
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
