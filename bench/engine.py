"""Engine resumes per second over a whole, messy PHQ-9, as a ratio to a same-run baseline.

Absolute rates depend on the machine and whatever else it is doing, so every
rate is reported next to a baseline measured in the same run, interleaved with
it: a plain ``json.loads(json.dumps(state))`` of the conversation's state as a
dict, which is the least any shell must do per message to store a state. The
ratio (engine rate / baseline rate) is what to compare between runs and machines.

Each measurement is the best of several timed batches (the least disturbed),
each batch long enough to dwarf the timer's resolution.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from bot.flows import Context, ConversationState, PatientText, outcome, resume, start
from bot.instruments import builtin_catalogue

# A patient answering a whole PHQ-9 as people do: typos, words, emoji, BACK,
# HELP, REPEAT, non-answers. 9 items are scored and the difficulty question asked.
MESSY_PHQ9 = [
    "hi",
    "HELP",
    " 2.",
    "Several days",
    "REPEAT",
    "sevral days",
    "two",
    "\U0001f600",
    "NEARLY EVERY DAY",
    "back",
    "not at all",
    "1!",
    "maybe",
    "2 or 3",
    "more than half",
    "0",
    "Not at all.",
    "somewhat difficult",
]
EXPECTED_TOTAL = 9

CATALOGUE = builtin_catalogue()
CONTEXT = Context(practice_name="Riverside Surgery", practice_phone="01632 960123")
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
INBOUNDS = [PatientText(text=line) for line in MESSY_PHQ9]


def conversation(round_trip: bool = True) -> ConversationState:
    """One whole PHQ-9: start, then one resume per line, storing the state as JSON in between."""
    state, _ = start("phq9", CATALOGUE, CONTEXT, T0)
    for inbound in INBOUNDS:
        if round_trip:
            state = ConversationState.from_json(state.to_json())
        state, _ = resume(state, CATALOGUE, inbound, T0)
    return state


def check_script() -> None:
    """The script must still be one complete PHQ-9 with the expected total."""
    state = conversation()
    result = outcome(state, CATALOGUE, T0)
    if result.status != "completed" or result.total != EXPECTED_TOTAL:
        raise SystemExit(
            f"bench script no longer completes a PHQ-9 with total {EXPECTED_TOTAL}: "
            f"status {result.status}, total {result.total}; update bench/engine.py"
        )


def baseline_payload() -> dict:
    """The state halfway through the script, as the plain dict a shell would store."""
    state, _ = start("phq9", CATALOGUE, CONTEXT, T0)
    for inbound in INBOUNDS[: len(INBOUNDS) // 2]:
        state, _ = resume(state, CATALOGUE, inbound, T0)
    return state.model_dump(mode="json")


def _per_second(work: Callable[[], object], units: int, min_time: float) -> float:
    """Units of work per second over one batch of at least ``min_time`` seconds."""
    loops = 1
    while True:
        began = time.perf_counter()
        for _ in range(loops):
            work()
        elapsed = time.perf_counter() - began
        if elapsed >= min_time:
            return loops * units / elapsed
        # aim a little past min_time, growing at least twofold
        loops = max(loops * 2, int(loops * 1.2 * min_time / max(elapsed, 1e-9)))


@dataclass
class Measurement:
    name: str
    per_second: float
    ratio: float


def run(repeats: int = 5, min_time: float = 0.25) -> dict:
    check_script()
    payload = baseline_payload()
    resumes = len(INBOUNDS)
    cases: dict[str, tuple[Callable[[], object], int]] = {
        "baseline: json.loads(json.dumps(state dict))": (
            lambda: json.loads(json.dumps(payload)),
            1,
        ),
        "resume + state JSON round-trip": (lambda: conversation(round_trip=True), resumes),
        "resume only": (lambda: conversation(round_trip=False), resumes),
    }
    best = dict.fromkeys(cases, 0.0)
    for _ in range(repeats):  # interleaved, so drift hits all cases alike
        for name, (work, units) in cases.items():
            best[name] = max(best[name], _per_second(work, units, min_time))
    baseline = best[next(iter(cases))]
    measurements = [Measurement(name, rate, rate / baseline) for name, rate in best.items()]
    engine = best["resume + state JSON round-trip"]
    return {
        "benchmark": "engine",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "repeats": repeats,
        "min_time_s": min_time,
        "resumes_per_conversation": resumes,
        "engine_resumes_per_second": round(engine, 1),
        "baseline_round_trips_per_second": round(baseline, 1),
        "ratio": round(engine / baseline, 4),
        "conversations_per_second": round(engine / resumes, 2),
        "measurements": [asdict(m) for m in measurements],
    }


def table(report: dict) -> str:
    rows = [("measure", "per second", "x baseline")]
    rows += [
        (m["name"], f"{m['per_second']:,.0f}", f"{m['ratio']:.3f}") for m in report["measurements"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{name:<{widths[0]}}  {rate:>{widths[1]}}  {ratio:>{widths[2]}}"
        for name, rate, ratio in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines.append(
        f"whole messy PHQ-9 ({report['resumes_per_conversation']} resumes): "
        f"{report['conversations_per_second']:,.1f} conversations/s; "
        f"ratio to baseline {report['ratio']:.3f}"
    )
    return "\n".join(lines)
