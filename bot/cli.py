"""The ``prombot`` command: a Flask CLI group over ``create_app``.

Each command only parses its arguments, calls the core or a service, and
prints; no logic lives here.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import FlaskGroup

from bot.app import create_app
from bot.errors import InputError
from bot.flows import Context, PatientText, outcome, resume, start
from bot.flows.events import Reply
from bot.flows.signposting import NATIONS
from bot.flows.state import Result
from bot.instruments import Catalogue, InstrumentFileError, InvalidAnswer, score
from bot.services.demo import install_demo
from bot.services.due_work import run_due_work
from bot.services.onboarding import NATIONS as PRACTICE_NATIONS
from bot.services.onboarding import onboard_practice
from bot.services.runtime import Runtime
from bot.settings import SettingsError
from bot.store.migrate import upgrade


def _catalogue() -> Catalogue:
    return current_app.extensions["prombot.catalogue"]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False)
def cli() -> None:
    """prombot: patient reported outcome measures by SMS."""


@cli.command("instruments")
@click.option("--json", "as_json", is_flag=True, help="one JSON array instead of a table")
def instruments_command(as_json: bool) -> None:
    """List the questionnaires available: id, title, items, licence."""
    rows = [
        {
            "id": i.id,
            "title": i.title,
            "items": len(i.items),
            "scored_items": len(i.scored_item_ids),
            "version": i.version,
            "licence": i.licence,
        }
        for i in _catalogue().values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['id']:<8} {row['items']:>2} items  {row['title']}")
        click.echo(f"{'':<8} licence: {row['licence']}")


@cli.command("score")
@click.argument("instrument_id")
@click.argument("values", nargs=-1)
def score_command(instrument_id: str, values: tuple[str, ...]) -> None:
    """Score VALUES given in item order; '-' marks a missing answer.

    Give one value per scored item (unscored items such as PHQ-9's difficulty
    question may be left out), or one per item.
    """
    catalogue = _catalogue()
    if instrument_id not in catalogue:
        _fail(f"unknown instrument {instrument_id!r}; try: {', '.join(catalogue)}")
    instrument = catalogue[instrument_id]
    ids = instrument.item_ids if len(values) == len(instrument.items) else None
    if ids is None:
        if len(values) > len(instrument.scored_item_ids):
            _fail(
                f"{instrument_id} takes {len(instrument.scored_item_ids)} scored values "
                f"(or {len(instrument.items)} with unscored items), not {len(values)}"
            )
        ids = instrument.scored_item_ids
    answers: dict[str, int] = {}
    for item_id, raw in zip(ids, values, strict=False):
        if raw in ("-", "", "null", "none"):
            continue
        try:
            answers[item_id] = int(raw)
        except ValueError:
            _fail(f"{instrument_id} item {item_id!r}: {raw!r} is not a whole number")
    try:
        scored = score(instrument, answers)
    except InvalidAnswer as exc:
        _fail(str(exc))
        return
    click.echo(
        json.dumps(
            {
                "instrument": instrument.id,
                "version": instrument.version,
                "status": "completed" if scored.complete else "incomplete",
                "total": scored.total,
                "band": scored.band,
                "percentage": scored.percentage,
                "prorated": scored.prorated,
                "answers": answers,
                "flags": list(scored.flags),
            }
        )
    )


@cli.command("chat")
@click.argument("instrument_id")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the result")
@click.option("--practice", default="Demo Surgery", show_default=True)
@click.option("--practice-phone", default="01632 960123", show_default=True)
@click.option("--continue", "continue_if_positive", is_flag=True, help="screen, then full form")
@click.option("--show-score", is_flag=True, help="tell the patient their score at the end")
@click.option(
    "--nation",
    type=click.Choice(NATIONS, case_sensitive=False),
    default="ENG",
    show_default=True,
    help="the practice's nation, for crisis signposting (UK: not known)",
)
def chat_command(
    instrument_id: str,
    as_json: bool,
    practice: str,
    practice_phone: str,
    continue_if_positive: bool,
    show_score: bool,
    nation: str,
) -> None:
    """Play the patient in a terminal: each line you type is a text message."""
    catalogue = _catalogue()
    if instrument_id not in catalogue:
        _fail(f"unknown instrument {instrument_id!r}; try: {', '.join(catalogue)}")
    try:
        context = Context(
            practice_name=practice,
            practice_phone=practice_phone or None,
            continue_if_positive=continue_if_positive,
            show_score=show_score,
            nation=nation.upper(),
        )
    except ValueError as exc:
        _fail(str(exc).splitlines()[0])
        return
    interactive = sys.stdin.isatty()
    state, events = start(instrument_id, catalogue, context, datetime.now(UTC))
    _print_replies(events)
    while True:
        if interactive:
            click.echo("you> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            break
        state, events = resume(
            state, catalogue, PatientText(text=line.rstrip("\r\n")), datetime.now(UTC)
        )
        _print_replies(events)
    if as_json:
        click.echo(json.dumps(_result_json(outcome(state, catalogue, datetime.now(UTC)), state)))


def _print_replies(events: list) -> None:
    for event in events:
        if isinstance(event, Reply):
            click.echo(event.text)
            click.echo()


def _result_json(result: Result, state) -> dict:
    data = result.model_dump(mode="json")
    if state.opted_out and data["status"] != "completed":
        data["status"] = "opted_out"
    earlier = [r.model_dump(mode="json") for r in state.results if r is not result]
    if earlier:
        data["screen"] = earlier[0]
    return data


def _runtime() -> Runtime:
    return current_app.extensions["prombot.runtime"]


@cli.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Create or upgrade the schema (Alembic); safe to repeat."""
    upgrade(_runtime().engine)
    click.echo("database is up to date")


@cli.command("demo")
@click.option("--json", "as_json", is_flag=True)
def demo_command(as_json: bool) -> None:
    """Seed the demo practice, staff, protocols, patients and API token; safe to repeat."""
    demo = install_demo(_runtime(), datetime.now(UTC))
    data = {
        "practice_id": demo.practice.id,
        "practice_name": demo.practice.name,
        "sms_number": demo.practice.sms_number,
        "api_token": demo.api_token,
        "users": demo.users,
        "patients": [{"id": p.id, "name": p.name, "phone": p.phone} for p in demo.patients],
    }
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"Demo practice: {data['practice_name']} ({data['practice_id']})")
    click.echo(f"SMS number:    {data['sms_number']}")
    click.echo(f"API token:     {data['api_token']}")
    for user in data["users"]:
        click.echo(f"Staff user:    {user['email']} / {user['password']} ({user['role']})")
    for patient in data["patients"]:
        click.echo(f"Patient:       {patient['name']} {patient['phone']} ({patient['id']})")


@cli.group("practice")
def practice_group() -> None:
    """Practices."""


@practice_group.command("create")
@click.option("--name", required=True)
@click.option("--sms-number", default=None, help="E.164; the number patients text")
@click.option("--contact-phone", default=None)
@click.option(
    "--nation",
    type=click.Choice(PRACTICE_NATIONS, case_sensitive=False),
    default="ENG",
    show_default=True,
    help="for bank holidays and crisis signposting",
)
@click.option("--admin-email", default=None, help="the first admin's e-mail address (sign-in)")
@click.option("--admin-name", default=None, help="the first admin's name")
@click.option("--json", "as_json", is_flag=True)
def practice_create_command(
    name: str,
    sms_number: str | None,
    contact_phone: str | None,
    nation: str,
    admin_email: str | None,
    admin_name: str | None,
    as_json: bool,
) -> None:
    """Onboard a practice: prints its id, SMS number and a new API token (shown once).

    With --admin-email and --admin-name it also creates the practice's first
    admin and prints their one-time password (shown once, here only: it is
    never logged), which they must change when they first sign in.

    Warns on stderr (and in ``warnings`` with --json) when the practice cannot
    yet be told of an urgent alert (judged with this process's SMTP_URL): a new
    practice has nobody on duty until staff are added.
    """
    try:
        onboarded = onboard_practice(
            _runtime(),
            name=name,
            sms_number=sms_number,
            contact_phone=contact_phone,
            nation=nation,
            admin_name=admin_name,
            admin_email=admin_email,
            now=datetime.now(UTC),
        )
    except InputError as exc:
        _fail(exc.message)
        return
    practice = onboarded.practice
    data = {
        "practice_id": practice.id,
        "name": practice.name,
        "sms_number": practice.sms_number,
        "nation": practice.nation,
        "api_token": onboarded.api_token,
        "warnings": onboarded.warnings,
    }
    if onboarded.admin_email is not None:
        data["admin_email"] = onboarded.admin_email
        data["admin_password"] = onboarded.admin_password
    for warning in data["warnings"]:
        click.echo(f"warning: {warning['message']}", err=True)
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"Practice:   {data['name']} ({data['practice_id']})")
    click.echo(f"SMS number: {data['sms_number']}")
    click.echo(f"API token:  {data['api_token']}  (shown once: store it now)")
    if onboarded.admin_email is not None:
        click.echo(f"Admin:      {data['admin_email']}")
        click.echo(
            f"Password:   {data['admin_password']}  "
            "(one-time, shown once: they must change it when they first sign in)"
        )


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve_command(host: str, port: int, threads: int) -> None:
    """The web app: webhooks, API, simulator (a threaded WSGI server)."""
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(
        f"prombot listening on http://{host}:{port} (gateway: {_runtime().settings.sms_gateway})"
    )
    run_simple(host, port, app, threaded=threads > 1, use_reloader=False, use_debugger=False)


@cli.command("tick")
@click.option("--at", "at", default=None, help="ISO-8601 time to act as of (default: now)")
def tick_command(at: str | None) -> None:
    """One pass of all due timed work as of --at, then exit; prints a JSON summary."""
    try:
        now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        _fail(f"--at must be an ISO-8601 time, not {at!r}")
        return
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    summary = {"at": now.isoformat(), **run_due_work(_runtime(), now)}
    click.echo(json.dumps(summary))


@cli.command("scheduler")
def scheduler_command() -> None:
    """The long-running process that drives all timed work (APScheduler)."""
    from scheduler.process import run

    run(current_app._get_current_object())  # type: ignore[attr-defined]


@cli.command("fake-twilio", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
def fake_twilio_command(host: str, port: int) -> None:
    """A local server speaking the part of Twilio's REST API that prombot uses.

    It accepts TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN (the demo values by
    default), sends signed status callbacks and can be told to fail (POST
    /_fake/behaviour). Point prombot at it with SMS_GATEWAY=twilio and
    TWILIO_API_URL=http://HOST:PORT.
    """
    from bot.settings import load_settings
    from bot.sms.fake_twilio import serve

    settings = load_settings()
    account_sid, auth_token = settings.twilio_account_sid, settings.twilio_auth_token
    click.echo(f"fake-twilio listening on http://{host}:{port} (account {account_sid})")
    serve(account_sid, auth_token, host=host, port=port)


def main() -> None:
    try:
        cli.main(prog_name="prombot")
    except InstrumentFileError as exc:
        click.echo(f"error: questionnaire file {exc}", err=True)
        sys.exit(2)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
