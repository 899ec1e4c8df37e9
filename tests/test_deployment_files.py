"""Production serving: gunicorn's settings, the Dockerfile and docker-compose.yml.

There is no Docker engine on the development machines, so the files are
checked for what a deployment relies on: the processes, the order they start
in, the health check, migrations run once, gunicorn as a user without
privileges, and the front-end assets built in a stage of their own. Where
the ``docker compose`` client exists, it validates the compose file too.
tests/e2e/test_production_layout.py runs the same commands as processes.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import subprocess
import sys
from types import ModuleType

import pytest
from gunicorn.config import Config

from bot.settings import SettingsError
from tests.e2e import processes

DRAMA_NUMBER = "+447700900123"


def gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """bot.gunicorn_conf as gunicorn loads it, under the environment given."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("bot.gunicorn_conf", None)
    return importlib.import_module("bot.gunicorn_conf")


def loaded(module: ModuleType) -> Config:
    """A gunicorn Config with the module's settings applied, as ``--config python:`` does."""
    config = Config()
    for name, value in vars(module).items():
        if name in config.settings:
            config.set(name, value)
    return config


# -- gunicorn -------------------------------------------------------------------------------


@pytest.mark.parametrize(("cpus", "workers"), [(1, 3), (2, 5), (3, 7), (4, 8), (64, 8)])
def test_workers_are_twice_the_cores_plus_one_at_most_eight(cpus: int, workers: int) -> None:
    from bot.gunicorn_conf import worker_count

    assert worker_count(cpus) == workers


def test_web_concurrency_sets_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    module = gunicorn_conf(monkeypatch, WEB_CONCURRENCY="3")
    assert loaded(module).workers == 3


def test_without_web_concurrency_the_workers_follow_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = gunicorn_conf(monkeypatch)
    assert loaded(module).workers == module.worker_count(module.usable_cpus())


def test_a_bad_web_concurrency_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError, match="WEB_CONCURRENCY"):
        gunicorn_conf(monkeypatch, WEB_CONCURRENCY="0")


def test_a_hung_request_frees_its_worker_before_twilio_gives_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = loaded(gunicorn_conf(monkeypatch))
    # synchronous workers: the timeout bounds each request, not only a worker's heartbeat
    assert config.worker_class_str == "sync"
    assert 0 < config.timeout < 15
    assert 0 < config.graceful_timeout < 15


def test_each_worker_builds_its_own_app_and_database_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = loaded(gunicorn_conf(monkeypatch))
    assert config.preload_app is False
    assert config.wsgi_app == "bot.app:create_app()"


def test_the_access_log_names_the_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    config = loaded(gunicorn_conf(monkeypatch))
    assert "%(U)s" in config.access_log_format
    for atom in ("%(r)s", "%(q)s", "%(f)s", "%(a)s", "%({"):
        assert atom not in config.access_log_format
    assert config.accesslog == "-"


def test_gunicorns_own_messages_lose_the_query_string(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = gunicorn_conf(monkeypatch)
    config = loaded(module)
    logger = config.logger_class(config)
    logger.exception("Error handling request %s", f"/sms/status?message_id=1&To={DRAMA_NUMBER}")
    logger.warning(f"Invalid request from ip=127.0.0.1: GET /x?phone={DRAMA_NUMBER} HTTP/1.1")
    for handler in logger.error_log.handlers:
        handler.flush()
    logged = capsys.readouterr()
    text = logged.out + logged.err
    assert "Error handling request /sms/status?..." in text
    assert "GET /x?... HTTP/1.1" in text
    assert DRAMA_NUMBER not in text
    assert "7700900123" not in text
    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).handlers.clear()


# -- docker-compose.yml ---------------------------------------------------------------------


def test_migrations_run_once_before_the_web_app_and_the_scheduler() -> None:
    assert processes.command("migrate") == ["prombot", "db", "upgrade"]
    assert processes.service("migrate")["restart"] == "no"
    for name in ("web", "scheduler"):
        assert processes.service(name)["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
    assert processes.service("migrate")["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_the_web_service_is_gunicorn_with_the_production_settings() -> None:
    assert processes.command("web") == ["gunicorn", "--config", "python:bot.gunicorn_conf"]
    assert processes.service("web")["ports"] == ["127.0.0.1:5000:5000"]


def test_the_web_service_is_healthy_when_healthz_answers_200() -> None:
    check = processes.healthcheck("web")
    assert check[:2] == ["python", "-c"]
    assert "http://127.0.0.1:5000/healthz" in check[2]
    # the image has no curl: the check is Python's urlopen, which raises on a 503
    assert "urlopen" in check[2]


def test_the_scheduler_is_its_own_service() -> None:
    assert processes.command("scheduler") == ["prombot", "scheduler"]
    assert "scheduler" not in " ".join(processes.command("web"))


def test_every_prombot_service_shares_one_configuration() -> None:
    environments = {
        name: processes.service(name)["environment"]
        for name in ("migrate", "web", "scheduler", "fake-twilio")
    }
    first = environments["web"]
    assert all(env == first for env in environments.values())
    assert first["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert first["TWILIO_API_URL"] == "http://fake-twilio:5001"
    assert processes.command("fake-twilio")[-2:] == ["--port", "5001"]


def test_docker_compose_accepts_the_file_where_the_client_exists() -> None:
    """``docker compose config`` where there is a client; the YAML itself everywhere."""
    data = processes.compose()
    assert set(data["services"]) == {"db", "migrate", "web", "scheduler", "fake-twilio"}
    docker = shutil.which("docker")
    if docker is None:
        return
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False, timeout=60
    )
    if version.returncode != 0:  # a docker client without the compose plugin
        return
    done = subprocess.run(
        [docker, "compose", "-f", str(processes.COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


# -- Dockerfile -----------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    """Each stage's instructions (continuation lines joined), by the stage's name."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    pending = ""
    for raw in processes.DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if line.endswith("\\"):
            continue
        instruction, pending = pending.strip(), ""
        if instruction.upper().startswith("FROM "):
            current = []
            stages[instruction.split()[-1]] = current
        current.append(instruction)
    return stages


def test_the_front_end_assets_are_built_in_a_node_stage_from_the_lock_file() -> None:
    assets = dockerfile_stages()["assets"]
    assert assets[0].startswith("FROM node:")
    assert "COPY package.json package-lock.json ./" in assets
    assert any(step.startswith("RUN npm ci ") for step in assets)


def test_the_runtime_image_has_the_assets_where_the_app_looks_for_them() -> None:
    runtime = dockerfile_stages()["runtime"]
    assert "COPY --from=assets /build/node_modules /app/node_modules" in runtime
    assert not any("npm" in step for step in runtime if not step.startswith("COPY"))


def test_the_image_runs_gunicorn_as_a_user_without_privileges() -> None:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "runtime"  # the default target
    runtime = stages["runtime"]
    [user] = [step for step in runtime if step.startswith("USER ")]
    assert user.split()[1] not in ("root", "0")
    cmd = [step for step in runtime if step.startswith("CMD ")][-1]
    assert json.loads(cmd.removeprefix("CMD ")) == processes.command("web")


def test_each_worker_says_when_it_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    """One line per worker once it has loaded the app (the webhook bench waits for them all)."""
    lines: list[str] = []

    class Log:
        def info(self, message: str, *args: object) -> None:
            lines.append(message % args)

    class Worker:
        pid = 4242
        log = Log()

    gunicorn_conf(monkeypatch).post_worker_init(Worker())
    assert lines == ["Worker ready (pid: 4242)"]
