"""The ``prombot`` command: its output, exit codes and streams, as a person or a script sees them.

Contract (CONTRACT.md): ``score`` and ``chat --json`` print one JSON object with
at least instrument, status, total, band, answers and flags; an invalid
instrument id or value exits non-zero with a one-line error on stderr.

The pure commands (``score``, ``chat``, ``instruments``) run in this process with
Flask's CLI runner on one app built once (the same click group, exit codes,
stdout and stderr); what needs a process of its own (the installed console
script, its instance folder, settings from the environment, a bad questionnaire
file stopping start-up) runs ``prombot`` as a real process with its own instance
folder, so nothing is written to the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.app import create_app
from bot.cli import cli

PROMBOT = Path(sys.executable).parent / "prombot"
CONTRACT_KEYS = {"instrument", "status", "total", "band", "answers", "flags"}
SIX = {"phq9", "phq2", "gad7", "gad2", "auditc", "who5"}


class Prombot:
    """Runs ``prombot`` as a real process with its own instance folder."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PROMBOT_")}
        self.env["PROMBOT_INSTANCE"] = str(home / "instance")

    def __call__(self, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None):
        return subprocess.run(
            [str(PROMBOT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(extra_env or {})},
            cwd=self.home,
            timeout=120,
        )


class InProcess:
    """Runs a ``prombot`` command in this process (Flask's CLI runner), on one app."""

    def __init__(self, home: Path) -> None:
        app = create_app(
            {"PROMBOT_INSTANCE": str(home / "instance"), "PROMBOT_SKIP_LOGGING_SETUP": True}
        )
        self.runner = app.test_cli_runner()

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        result = self.runner.invoke(cli, list(args), input=stdin)
        return subprocess.CompletedProcess(
            ["prombot", *args], result.exit_code, result.stdout, result.stderr
        )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> InProcess:
    return InProcess(tmp_path_factory.mktemp("prombot"))


@pytest.fixture
def process(tmp_path) -> Prombot:
    return Prombot(tmp_path)


def test_the_console_script_is_installed():
    assert PROMBOT.exists()


@pytest.mark.slow  # a real prombot process
def test_runs_write_only_to_their_own_instance_folder(process):
    assert process("instruments").returncode == 0
    assert (process.home / "instance" / "secret_key").exists()


@pytest.mark.slow  # a real prombot process
def test_the_installed_command_scores_and_fails_as_the_in_process_one_does(process, run):
    for args in (["score", "phq9", *"123012301"], ["score", "phq10", "1"], ["instruments"]):
        real, here = process(*args), run(*args)
        assert (real.returncode, real.stdout, real.stderr) == (
            here.returncode,
            here.stdout,
            here.stderr,
        ), args


# -- prombot instruments -------------------------------------------------------------


def test_instruments_lists_the_six_with_title_and_licence(run):
    done = run("instruments")
    assert done.returncode == 0, done.stderr
    first_words = {line.split()[0] for line in done.stdout.splitlines() if line[:1].strip()}
    assert first_words == SIX
    assert "Patient Health Questionnaire (PHQ-9)" in done.stdout
    assert done.stdout.count("licence:") == 6


def test_instruments_json_gives_ids_titles_item_counts_and_licences(run):
    done = run("instruments", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(rows) == SIX
    assert (rows["phq9"]["items"], rows["phq9"]["scored_items"]) == (10, 9)
    assert (rows["who5"]["items"], rows["who5"]["scored_items"]) == (5, 5)
    assert all(row["title"] and row["licence"] for row in rows.values())


PRACTICE_FORM = {
    "id": "mood_check",
    "version": "1",
    "title": "Mood check",
    "short_title": "Mood check",
    "licence": "Written by the practice",
    "source": "Practice protocol",
    "stem": "Over the last week:",
    "option_sets": {"yn": {"options": [{"value": 0, "label": "No"}, {"value": 1, "label": "Yes"}]}},
    "items": [
        {"id": "low", "text": "Have you felt low?", "options": "yn"},
        {"id": "tired", "text": "Have you felt tired?", "options": "yn"},
    ],
    "bands": [
        {"id": "fine", "label": "Fine", "min": 0, "max": 0},
        {"id": "review", "label": "Review", "min": 1, "max": 2},
    ],
}


@pytest.mark.slow  # a real prombot process
def test_a_practice_folder_named_in_configuration_adds_a_questionnaire(process, tmp_path):
    folder = tmp_path / "forms"
    folder.mkdir()
    (folder / "mood_check.yaml").write_text(yaml.safe_dump(PRACTICE_FORM))
    config = {"PROMBOT_INSTRUMENTS_DIRS": str(folder)}
    listed = process("instruments", "--json", extra_env=config)
    assert {row["id"] for row in json.loads(listed.stdout)} == SIX | {"mood_check"}
    scored = json.loads(process("score", "mood_check", "1", "0", extra_env=config).stdout)
    assert (scored["status"], scored["total"], scored["band"]) == ("completed", 1, "review")
    chat = process("chat", "mood_check", "--json", stdin="yes\nno\n", extra_env=config)
    result = json.loads(chat.stdout.splitlines()[-1])
    assert (result["total"], result["answers"]) == (1, {"low": 1, "tired": 0})


@pytest.mark.slow  # a real prombot process
def test_a_bad_practice_file_stops_the_command_with_an_error_naming_it(process, tmp_path):
    folder = tmp_path / "forms"
    folder.mkdir()
    bad = dict(PRACTICE_FORM, bands=[{"id": "fine", "label": "Fine", "min": 0, "max": 1}])
    (folder / "mood_check.yaml").write_text(yaml.safe_dump(bad))
    done = process("instruments", extra_env={"PROMBOT_INSTRUMENTS_DIRS": str(folder)})
    assert done.returncode != 0
    assert str(folder / "mood_check.yaml") in done.stderr
    assert "bands end at 1 but totals reach 2" in done.stderr
    assert "Traceback" not in done.stderr


# -- prombot score -------------------------------------------------------------------

# arguments, status, total, band, flags
# (every band edge is in tests/test_scoring.py; these check the command's contract)
SCORES = [
    (["phq9", *"000000000"], "completed", 0, "none_minimal", []),
    (["phq9", *"123012301"], "completed", 13, "moderate", ["self_harm_risk"]),
    (["phq9", *"1230123012"], "completed", 13, "moderate", ["self_harm_risk"]),  # + difficulty
    (["phq9", *"333333200"], "completed", 20, "severe", ["severe_score"]),
    (["phq9", *"123"], "incomplete", None, None, []),
    (["phq9", *"1230-2301"], "incomplete", None, None, ["self_harm_risk"]),
    (["gad7", *"3333300"], "completed", 15, "severe", ["severe_score"]),
    (["auditc", "2", "2", "1"], "completed", 5, "positive", ["positive_screen"]),
    (["who5", *"55551"], "completed", 21, "adequate_wellbeing", ["depression_screen"]),
]


@pytest.mark.parametrize(
    ("args", "status", "total", "band", "flags"), SCORES, ids=[" ".join(r[0]) for r in SCORES]
)
def test_score_prints_one_json_object_with_the_contract_fields(
    run, args, status, total, band, flags
):
    done = run("score", *args)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1
    result = json.loads(done.stdout)
    assert set(result) >= CONTRACT_KEYS
    assert result["instrument"] == args[0]
    assert (result["status"], result["total"], result["band"]) == (status, total, band)
    assert sorted(result["flags"]) == sorted(flags)


def test_score_answers_are_keyed_by_item_id_and_leave_out_missing_values(run):
    result = json.loads(run("score", "phq9", *"1230-2301").stdout)
    assert result["answers"] == {
        "interest": 1,
        "mood": 2,
        "sleep": 3,
        "energy": 0,
        "self_worth": 2,
        "concentration": 3,
        "psychomotor": 0,
        "self_harm": 1,
    }


def test_score_who5_also_reports_the_percentage(run):
    assert json.loads(run("score", "who5", *"55551").stdout)["percentage"] == 84


# name, arguments
SCORE_ERRORS = [
    ("unknown instrument", ["phq10", "1", "2"]),
    ("value above the range", ["phq9", *"00000000", "4"]),
    ("negative value", ["phq9", "--", "-1"]),
    ("not a whole number", ["gad2", "1", "1.5"]),
    ("too many values", ["gad2", "1", "1", "1"]),
    ("who5 value above 5", ["who5", *"55556"]),
]


@pytest.mark.parametrize("args", [r[1] for r in SCORE_ERRORS], ids=[r[0] for r in SCORE_ERRORS])
def test_score_with_an_invalid_id_or_value_exits_non_zero_with_one_line_on_stderr(run, args):
    done = run("score", *args)
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- prombot chat --------------------------------------------------------------------

MESSY_PHQ9 = [
    "hi",  # not an answer: re-prompted
    "HELP",
    " 2.",  # interest 2
    "Several days",  # mood 1
    "REPEAT",
    "sevral days",  # sleep 1
    "two",  # energy 2
    "\U0001f600",  # re-prompted
    "NEARLY EVERY DAY",  # appetite 3 ...
    "back",
    "not at all",  # ... replaced by 0
    "1!",  # self_worth 1
    "maybe",
    "2 or 3",
    "more than half",  # concentration 2
    "0",  # psychomotor 0
    "Not at all.",  # self_harm 0
    "somewhat difficult",  # difficulty 1 (asked because items are above 0)
]


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_chat_json_takes_a_whole_messy_phq9_on_stdin_and_ends_with_the_result(run):
    done = run("chat", "phq9", "--json", stdin="\n".join(MESSY_PHQ9) + "\n")
    assert done.returncode == 0, done.stderr
    result = _last_json(done.stdout)
    assert set(result) >= CONTRACT_KEYS
    assert result["instrument"] == "phq9"
    assert (result["status"], result["total"], result["band"]) == ("completed", 9, "mild")
    assert result["answers"] == {
        "interest": 2,
        "mood": 1,
        "sleep": 1,
        "energy": 2,
        "appetite": 0,
        "self_worth": 1,
        "concentration": 2,
        "psychomotor": 0,
        "self_harm": 0,
        "difficulty": 1,
    }
    assert result["flags"] == []
    assert "Demo Surgery" in done.stdout
    assert "Sorry, I didn't understand." in done.stdout
    assert "OK, going back." in done.stdout
    assert "Thank you, that is the end of the questionnaire." in done.stdout


def test_chat_with_windows_line_endings_reads_the_same(run):
    done = run("chat", "phq9", "--json", stdin="\r\n".join(MESSY_PHQ9) + "\r\n")
    assert _last_json(done.stdout)["total"] == 9


def test_chat_sends_crisis_signposting_and_the_result_carries_the_flag(run):
    lines = ["0", "I want to end it all", "0", "0", "0", "0", "0", "0", "0", "0"]
    done = run("chat", "phq9", "--json", stdin="\n".join(lines) + "\n")
    assert "Samaritans 116 123" in done.stdout
    result = _last_json(done.stdout)
    assert (result["status"], result["total"]) == ("completed", 0)
    assert result["flags"] == ["self_harm_risk"]


@pytest.mark.parametrize(
    ("nation", "line"),
    [("NIR", "Lifeline 0808 808 8000"), ("wls", "NHS 111 Wales (press 2)"), ("ENG", "NHS 111")],
)
def test_chat_signposts_by_the_nation_given(run, nation, line):
    done = run("chat", "gad7", "--nation", nation, stdin="I want to end it all\n")
    assert line in done.stdout
    if nation == "NIR":
        assert "111" not in done.stdout


def test_chat_with_an_unknown_nation_exits_non_zero(run):
    done = run("chat", "gad7", "--nation", "FRA")
    assert done.returncode != 0


def test_chat_stopped_part_way_reports_opted_out_with_no_total(run):
    done = run("chat", "gad7", "--json", stdin="1\n2\nSTOP\n")
    assert "You have opted out" in done.stdout
    result = _last_json(done.stdout)
    assert (result["status"], result["total"], result["band"]) == ("opted_out", None, None)
    assert result["answers"] == {"nervous": 1, "control_worry": 2}


def test_chat_ending_part_way_is_incomplete_with_no_total(run):
    result = _last_json(run("chat", "who5", "--json", stdin="5\n4\n").stdout)
    assert (result["status"], result["total"], result["band"]) == ("incomplete", None, None)


def test_chat_continues_a_positive_screen_into_the_full_instrument_when_asked(run):
    lines = ["3", "3", *"1111111", "very difficult"]
    done = run("chat", "phq2", "--json", "--continue", stdin="\n".join(lines) + "\n")
    result = _last_json(done.stdout)
    assert result["instrument"] == "phq9"
    assert (result["status"], result["total"], result["band"]) == ("completed", 13, "moderate")
    assert result["screen"]["instrument"] == "phq2"
    assert result["screen"]["band"] == "positive"


def test_chat_without_json_prints_only_the_conversation(run):
    done = run("chat", "gad2", stdin="0\n0\n")
    assert done.returncode == 0
    assert "{" not in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("Thank you, that is the end")


UNKNOWN_IDS = ["phq10", "PHQ9"]


@pytest.mark.parametrize("instrument_id", UNKNOWN_IDS)
def test_chat_with_an_unknown_instrument_exits_non_zero_with_one_line_on_stderr(run, instrument_id):
    done = run("chat", instrument_id, "--json", stdin="0\n")
    assert done.returncode != 0
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
