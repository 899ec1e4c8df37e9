"""Exactly once under fire: two schedulers killed again and again while Twilio fails.

Real processes (``prombot scheduler`` twice, ``prombot serve`` for the delivery
reports, ``prombot fake-twilio``) on SQLite and on PostgreSQL, 500 invitations
due at once (1,000 texts), a ``kill -9`` of one scheduler or the other every
few seconds of its work, twenty times, each restarted at once; fake-twilio
answers each create a little after the text exists (its reports usually come
first), lists new texts a second late, and fails about one create in nine
(429, 500, 503, a timeout before it made the text, a timeout after) and some
lookups. ``tests/e2e/outbox_faults.py`` runs it; its settings are in
``fault_plan``.

Only outcomes are asserted, never timings: every patient received each text
exactly once (counted at fake-twilio), nothing is left queued or sending,
no text was handed over more often than SMS_MAX_ATTEMPTS, and every text's
recorded status is its last delivery report. The deadline bounds the wait.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dbs import postgres_admin_url
from tests.e2e.outbox_faults import fault_plan, run

DEADLINE = 1200  # seconds: a bound on the run, never an expectation of its speed
CREATE_FAULTS = ("429", "500", "503", "timeout_before", "timeout_after")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_schedulers_killed_again_and_again_with_twilio_failing_send_each_text_once(
    backend: str, tmp_path: Path
) -> None:
    if backend == "postgresql" and postgres_admin_url() is None:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    plan = fault_plan(invitations=500, kills=20)
    outcome, settled = run(backend, tmp_path, plan, seconds=DEADLINE)
    report = f"{outcome.summary()}\n(logs: {tmp_path})"

    assert settled, report
    assert outcome.kills >= plan.kills // 2, "the texts went before the kills could test them"
    assert all(outcome.faults.get(f"create {fault}") for fault in CREATE_FAULTS), report
    assert outcome.written == 2 * plan.invitations, report  # an introduction and a question
    assert (outcome.received, outcome.doubled, outcome.lost) == (outcome.written, 0, 0), report
    assert (outcome.unsettled, outcome.failed) == (0, 0), report
    assert outcome.over_attempts == 0, report
    assert (outcome.not_final, outcome.wrong_sid, outcome.reports_refused) == (0, 0, 0), report
