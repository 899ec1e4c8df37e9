"""Settings: typed, checked once at start-up, one line naming the variable when wrong.

The README's configuration table is checked against the settings class, so
the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"
PROMBOT = Path(sys.executable).parent / "prombot"

BAD_SETTINGS = [
    # variable                   value                    what the one line must say
    ("SMS_MAX_PER_SECOND", "fast", "number"),
    ("SMS_MAX_PER_SECOND", "-1", "greater than or equal to 0"),
    ("SMS_MAX_ATTEMPTS", "0", "greater than or equal to 1"),
    ("SMS_MAX_ATTEMPTS", "2.5", "integer"),
    ("SMS_GATEWAY", "carrier-pigeon", "'local' or 'twilio'"),
    ("SMTP_URL", "http://mail.example", "smtp://"),
    ("SMTP_URL", "smtp://mail.example:notaport", "port"),
    ("PUBLIC_BASE_URL", "prombot.example", "http"),
    ("TWILIO_API_URL", "ftp://api.twilio.com", "http"),
    ("DATABASE_URL", "not a url", "SQLAlchemy URL"),
    ("PROMBOT_LOG_FORMAT", "xml", "'json' or 'console'"),
    ("PROMBOT_JOB_INTERVALS", "dispatch", "name=seconds"),
    ("PROMBOT_JOB_INTERVALS", "dispatch=0", "at least 1 second"),
    ("PROMBOT_JOB_INTERVALS", "dispatch=soon", "integer"),
    ("PROMBOT_PROXY_HOPS", "-1", "greater than or equal to 0"),
    ("PROMBOT_MAX_REQUEST_BYTES", "10", "greater than or equal to 16384"),
    ("SMS_VALIDITY_PERIOD_SECONDS", "99999", "less than or equal to 36000"),
    ("TWILIO_TIMEOUT_SECONDS", "0", "greater than 0"),
    ("SMS_RETRY_MAX_SECONDS", "5", "SMS_RETRY_BASE_SECONDS"),
]


@pytest.mark.parametrize(("variable", "value", "says"), BAD_SETTINGS)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "\n" not in message
    assert variable in message.split(":")[0] or message.startswith(variable), message
    assert says in message, message


def test_a_secret_is_never_repeated_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", "http://alerts:hunter2-secret@mail.example")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "hunter2" not in str(refused.value)
    settings = load_settings({"SMTP_URL": "smtp://alerts:hunter2-secret@mail.example"})
    assert "hunter2" not in repr(settings)


def test_values_are_typed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_MAX_PER_SECOND", "2.5")
    monkeypatch.setenv("PROMBOT_JOB_INTERVALS", "dispatch=1, outbox=2")
    monkeypatch.setenv("PROMBOT_INSTRUMENTS_DIRS", os.pathsep.join(["/a", "/b"]))
    monkeypatch.setenv("SMTP_URL", "smtp://127.0.0.1:1025?starttls=1")
    settings = load_settings()
    assert settings.sms_max_per_second == 2.5
    assert settings.prombot_job_intervals == {"dispatch": 1, "outbox": 2}
    assert settings.prombot_instruments_dirs == [Path("/a"), Path("/b")]
    assert settings.smtp is not None
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.starttls) == (
        "127.0.0.1",
        1025,
        True,
    )


def test_a_tests_config_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMS_GATEWAY", "twilio")
    assert load_settings({"SMS_GATEWAY": "local", "TESTING": True}).sms_gateway == "local"
    with pytest.raises(SettingsError, match="SMS_GATEWAY"):
        load_settings({"SMS_GATEWAY": "carrier-pigeon"})


@pytest.mark.parametrize("off", ["", "none", "off"])
def test_smtp_url_can_turn_e_mail_off(monkeypatch: pytest.MonkeyPatch, off: str) -> None:
    monkeypatch.setenv("SMTP_URL", off)
    assert load_settings().smtp is None


def _readme_configuration_rows() -> list[tuple[str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.fullmatch(r"\| `([A-Z_]+)` \| (.*) \| (.*) \|", line.strip())
        if match:
            rows.append((match[1], match[2], match[3]))
    return rows


def test_the_readme_configuration_table_is_the_settings_class() -> None:
    assert _readme_configuration_rows() == settings_table()


def test_every_setting_has_a_meaning() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("args", "variable", "value"),
    [
        (["instruments"], "SMS_MAX_PER_SECOND", "fast"),
        (["tick"], "SMS_GATEWAY", "carrier-pigeon"),
        (["scheduler"], "SMTP_URL", "mail.example"),
        (["scheduler"], "PROMBOT_JOB_INTERVALS", "dispach=1"),
        (["serve", "--port", "1"], "PUBLIC_BASE_URL", "prombot.example"),
    ],
)
def test_the_command_stops_with_one_line_naming_the_variable(
    tmp_path: Path, args: list[str], variable: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMBOT_", "SMS_", "SMTP"))}
    env.update(
        PROMBOT_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prombot.db'}",
        **{variable: value},
    )
    if args == ["scheduler"]:
        subprocess.run([str(PROMBOT), "db", "upgrade"], env={**env, variable: ""}, timeout=120)
    done = subprocess.run(
        [str(PROMBOT), *args], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {variable}"), lines[0]


def test_the_outbox_gets_its_tuning_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.services.outbox import OutboxSettings

    monkeypatch.setenv("SMS_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("SMS_SEND_LEASE_SECONDS", "90")
    settings = load_settings()
    outbox = OutboxSettings(**settings.delivery())
    assert (outbox.max_attempts, outbox.lease_seconds) == (7, 90.0)


# -- the settings class is the one source of configuration ---------------------------------

CODE = Path(__file__).resolve().parent.parent
ENVIRONMENT_READ = re.compile(r"\bos\.(environ|getenv)\b|\bfrom os import\b.*\b(environ|getenv)\b")
CONFIG_READ = re.compile(r"""\bconfig(?:\[|\.get\()\s*["']([A-Z][A-Z0-9_]*)["'](?!\s*\]\s*=[^=])""")


def settings_bypasses(source: str) -> list[str]:
    """Lines that read the environment, or read one of our settings from a config mapping."""
    found = []
    for number, line in enumerate(source.splitlines(), start=1):
        if ENVIRONMENT_READ.search(line):
            found.append(f"{number}: {line.strip()}")
            continue
        for match in CONFIG_READ.finditer(line):
            if match[1].lower() in Settings.model_fields:
                found.append(f"{number}: {line.strip()}")
    return found


@pytest.mark.parametrize(
    "line",
    [
        'url = os.environ["SMTP_URL"]',
        'url = os.environ.get("SMTP_URL")',
        'url = os.getenv("SMTP_URL")',
        "from os import environ",
        'url = rt.config["SMTP_URL"]',
        'url = current_app.config.get("SMTP_URL")',
        'if current_app.config["SMS_GATEWAY"] != "local":',
    ],
)
def test_the_guard_sees_a_setting_read_around_the_settings_class(line: str) -> None:
    assert settings_bypasses(line) == [f"1: {line}"]


@pytest.mark.parametrize(
    "line",
    [
        "url = rt.settings.smtp_url",
        'app.config["MAX_CONTENT_LENGTH"] = settings.prombot_max_request_bytes',
        'limit = app.config["MAX_CONTENT_LENGTH"]',
        'clock = config.get("PROMBOT_CLOCK")',  # a test's hook, not a setting
    ],
)
def test_the_guard_leaves_settings_and_flasks_own_keys_alone(line: str) -> None:
    assert settings_bypasses(line) == []


def test_only_the_settings_class_reads_the_environment_or_the_settings_by_name() -> None:
    sources = sorted([*(CODE / "bot").rglob("*.py"), *(CODE / "scheduler").rglob("*.py")])
    assert len(sources) > 20
    found = {
        str(path.relative_to(CODE)): lines
        for path in sources
        if path != CODE / "bot" / "settings.py"
        and (lines := settings_bypasses(path.read_text(encoding="utf-8")))
    }
    assert found == {}, "read them from rt.settings (bot/settings.py) instead"
