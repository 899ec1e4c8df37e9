"""TwilioGateway against fake-twilio (in a thread of the test process), over real HTTP.

The official twilio client does the talking, so these also show that
fake-twilio speaks enough of Twilio's API for it: creating, listing (pages
included) and fetching messages, basic auth, and Twilio's error bodies. Each
failure Twilio can give is sorted as the outbox needs: transient, in doubt, or
permanent with Twilio's code.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.app import gateway_from_config
from bot.sms.fake_twilio import FakeTwilio, running
from bot.sms.gateway import FindsSent, SendError
from bot.sms.twilio import DEFAULT_VALIDITY_PERIOD, TwilioGateway, callback_url

ACCOUNT_SID = "AC" + "f" * 32
AUTH_TOKEN = "gateway-test-auth-token"
PRACTICE = "+447700900000"
PATIENT = "+447700900101"
CALLBACK = "http://127.0.0.1:9/sms/status"  # the discard port: nobody listens
WAIT = 30  # seconds: a bound on waiting for the fake's threads, not an expectation of speed
T = TypeVar("T")

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Fake:
    def __init__(self, url: str, state: FakeTwilio) -> None:
        self.url = url
        self.state = state

    def behave(self, **behaviour: Any) -> None:
        request = urllib.request.Request(
            self.url + "/_fake/behaviour",
            data=json.dumps(behaviour).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with _NO_PROXY.open(request, timeout=30) as response:
            assert response.status == 200

    def messages(self) -> list[dict[str, Any]]:
        with _NO_PROXY.open(self.url + "/_fake/messages", timeout=30) as response:
            return json.loads(response.read())["messages"]

    def requests(self, kind: str) -> list[dict[str, Any]]:
        with _NO_PROXY.open(self.url + "/_fake/requests", timeout=30) as response:
            return [r for r in json.loads(response.read())["requests"] if r["kind"] == kind]


def wait_for(read: Callable[[], T], done: Callable[[T], bool], *, timeout: float = WAIT) -> T:
    """Read until ``done`` (or the bound runs out: the caller's asserts then say what is wrong)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


@pytest.fixture
def fake() -> Iterator[Fake]:
    with running(ACCOUNT_SID, AUTH_TOKEN) as (url, state):
        yield Fake(url, state)


def gateway(fake: Fake, **options: Any) -> TwilioGateway:
    return TwilioGateway(
        account_sid=ACCOUNT_SID,
        auth_token=options.pop("auth_token", AUTH_TOKEN),
        api_url=fake.url,
        status_callback=CALLBACK,
        **options,
    )


def send(gw: TwilioGateway, body: str = "Hello from the surgery", to: str = PATIENT):
    return gw.send(to=to, from_=PRACTICE, body=body, message_id="m" * 32)


def test_send_creates_the_message_with_callback_and_validity_period(fake: Fake) -> None:
    sent = send(gateway(fake, validity_period=3600))
    assert sent.provider_sid.startswith("SM") and len(sent.provider_sid) == 34
    assert sent.status == "queued"
    (message,) = fake.messages()
    assert message["sid"] == sent.provider_sid
    assert (message["to"], message["from"], message["body"]) == (
        PATIENT,
        PRACTICE,
        "Hello from the surgery",
    )
    # Changed by design: the callback names the text, so a report can find it before its SID.
    assert message["status_callback"] == CALLBACK + "?message_id=" + "m" * 32
    assert message["validity_period"] == 3600


def test_default_validity_period_is_four_hours(fake: Fake) -> None:
    send(gateway(fake))
    assert fake.messages()[0]["validity_period"] == DEFAULT_VALIDITY_PERIOD == 4 * 3600


def test_wrong_credentials_are_refused_as_twilio_does(fake: Fake) -> None:
    with pytest.raises(SendError) as caught:
        send(gateway(fake, auth_token="not-the-token"))
    assert caught.value.code == 20003
    assert not caught.value.permanent  # a configuration fault: the text itself is fine
    assert fake.messages() == []
    assert fake.requests("create") == [{"method": "POST", "kind": "create", "status": 401}]


def test_429_is_transient_with_the_retry_after_hint(fake: Fake) -> None:
    fake.behave(fail=[{"status": 429, "count": 1, "on": "create", "retry_after": 42}])
    with pytest.raises(SendError) as caught:
        send(gateway(fake))
    error = caught.value
    assert (error.code, error.permanent, error.in_doubt, error.retry_after) == (
        20429,
        False,
        False,
        42.0,
    )
    assert fake.messages() == []
    assert send(gateway(fake)).provider_sid  # the next request goes through


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_transient_and_in_doubt(fake: Fake, status: int) -> None:
    fake.behave(fail=[{"status": status, "count": 1, "on": "create"}])
    with pytest.raises(SendError) as caught:
        send(gateway(fake))
    assert caught.value.code == (20500 if status == 500 else 20503)
    assert not caught.value.permanent
    assert caught.value.in_doubt  # Twilio may have acted on it: look before resending
    assert caught.value.retry_after is None


@pytest.mark.parametrize("code", [21610, 21211, 21614])
def test_refusals_for_the_number_are_permanent_with_twilios_code(fake: Fake, code: int) -> None:
    fake.behave(numbers={PATIENT: {"create_error": code}})
    with pytest.raises(SendError) as caught:
        send(gateway(fake))
    assert (caught.value.code, caught.value.permanent, caught.value.in_doubt) == (
        code,
        True,
        False,
    )
    assert fake.messages() == []


def test_a_number_that_is_not_e164_is_21211(fake: Fake) -> None:
    with pytest.raises(SendError) as caught:
        send(gateway(fake), to="07700 900101")
    assert (caught.value.code, caught.value.permanent) == (21211, True)


def test_a_slow_answer_times_out_in_doubt_and_the_message_can_be_found(fake: Fake) -> None:
    """Twilio took the text but answered too late: the lookup finds it, so no resend."""
    fake.behave(slow=[{"seconds": 3, "count": 1, "on": "create", "when": "after"}])
    gw = gateway(fake, timeout=0.5)
    started = datetime.now(UTC)
    with pytest.raises(SendError) as caught:
        send(gw)
    assert caught.value.in_doubt and not caught.value.permanent
    (message,) = fake.messages()
    found = gw.find_sent(to=PATIENT, from_=PRACTICE, body="Hello from the surgery", since=started)
    assert found is not None and found.provider_sid == message["sid"]


def test_a_connection_never_made_is_transient_and_not_in_doubt() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    gw = TwilioGateway(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(SendError) as caught:
        send(gw)
    assert not caught.value.permanent and not caught.value.in_doubt


def test_find_sent_matches_recipient_sender_and_body_and_skips_known_sids(fake: Fake) -> None:
    gw = gateway(fake)
    since = datetime.now(UTC)
    first = send(gw, "Same words")
    second = send(gw, "Same words")
    send(gw, "Other words")
    send(gw, "Same words", to="+447700900102")
    assert isinstance(gw, FindsSent)

    def find(**overrides: Any):
        query = {"to": PATIENT, "from_": PRACTICE, "body": "Same words", "since": since}
        return gw.find_sent(**{**query, **overrides})

    assert find().provider_sid in {first.provider_sid, second.provider_sid}
    assert find(exclude={second.provider_sid}).provider_sid == first.provider_sid
    assert find(exclude={first.provider_sid, second.provider_sid}) is None
    assert find(body="Never sent") is None
    assert find(from_="+447700900001") is None
    assert find(since=datetime.now(UTC) + timedelta(hours=1)) is None


def test_find_sent_reads_past_the_first_page(fake: Fake) -> None:
    fake.behave(callback_delay=30)  # all stay queued: only the undated search finds them
    gw = gateway(fake)
    since = datetime.now(UTC)
    oldest = send(gw, "The one we look for")
    for n in range(60):  # most recent first: the wanted one is on page two (50 a page)
        send(gw, f"Filler {n}")
    found = gw.find_sent(to=PATIENT, from_=PRACTICE, body="The one we look for", since=since)
    assert found is not None and found.provider_sid == oldest.provider_sid
    assert len(fake.requests("list")) == 3  # the dated search, then two pages


def test_find_sent_finds_a_text_twilio_still_holds_unsent(fake: Fake) -> None:
    """A queued text has no sent date, so the dated search misses it; the second does not."""
    fake.behave(callback_delay=30)  # it stays "queued" for the whole test
    gw = gateway(fake)
    sent = send(gw, "Still in the queue")
    assert fake.messages()[0]["date_sent"] is None
    found = gw.find_sent(
        to=PATIENT, from_=PRACTICE, body="Still in the queue", since=datetime.now(UTC)
    )
    assert found is not None
    assert (found.provider_sid, found.status) == (sent.provider_sid, "queued")


def test_find_sent_raises_when_twilio_cannot_be_asked(fake: Fake) -> None:
    fake.behave(fail=[{"status": 500, "count": 1, "on": "list"}])
    with pytest.raises(SendError) as caught:
        gateway(fake).find_sent(to=PATIENT, from_=PRACTICE, body="x", since=datetime.now(UTC))
    assert not caught.value.permanent


def test_fake_twilio_answers_the_official_client(fake: Fake) -> None:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = fake.url
    created = client.messages.create(to=PATIENT, from_=PRACTICE, body="Hi")
    fetched = client.messages(created.sid).fetch()
    assert (fetched.sid, fetched.to, fetched.from_, fetched.body) == (
        created.sid,
        PATIENT,
        PRACTICE,
        "Hi",
    )
    assert fetched.direction == "outbound-api"
    assert fetched.date_created is not None
    assert [m.sid for m in client.messages.list(to=PATIENT)] == [created.sid]
    assert client.messages.list(to="+447700900102") == []
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_fake_twilio_moves_messages_through_their_statuses(fake: Fake) -> None:
    fake.behave(
        callback_delay=0,
        numbers={"+447700900102": {"status": "undelivered", "error_code": 30003}},
    )
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = fake.url
    good = client.messages.create(to=PATIENT, from_=PRACTICE, body="Hi")
    bad = client.messages.create(to="+447700900102", from_=PRACTICE, body="Hi")

    def settled() -> dict[str, tuple[str, int | None]]:
        return {m["sid"]: (m["status"], m["error_code"]) for m in fake.messages()}

    statuses = wait_for(
        settled,
        lambda s: s[good.sid][0] == "delivered" and s[bad.sid][0] == "undelivered",
    )
    assert statuses[good.sid] == ("delivered", None)
    assert statuses[bad.sid] == ("undelivered", 30003)


def test_gateway_from_config_points_at_twilio_api_url_with_the_public_callback() -> None:
    gw = gateway_from_config(
        {
            "SMS_GATEWAY": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_URL": "http://127.0.0.1:5001/",
            "PUBLIC_BASE_URL": "https://surgery.example/",
            "SMS_VALIDITY_PERIOD_SECONDS": "7200",
        }
    )
    assert isinstance(gw, TwilioGateway)
    assert gw.status_callback == "https://surgery.example/sms/status"
    assert gw.validity_period == 7200
    assert gw._client.api.base_url == "http://127.0.0.1:5001"
    with pytest.raises(ValueError):
        gateway_from_config({"SMS_GATEWAY": "carrier-pigeon"})


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (
            "https://surgery.example/sms/status",
            "https://surgery.example/sms/status?message_id=ab12",
        ),
        (
            "https://surgery.example/sms/status?practice=7",
            "https://surgery.example/sms/status?practice=7&message_id=ab12",
        ),
        (
            "https://surgery.example/sms/status?message_id=forged",
            "https://surgery.example/sms/status?message_id=ab12",
        ),
    ],
)
def test_the_callback_url_names_the_text_and_keeps_the_rest(base: str, expected: str) -> None:
    assert callback_url(base, "ab12") == expected


def test_twilio_creates_take_no_idempotency_key_so_a_repeat_is_a_second_text(fake: Fake) -> None:
    """Why the outbox must look a text up rather than simply ask again."""
    gw = gateway(fake)
    first, second = send(gw, "Same words"), send(gw, "Same words")
    assert first.provider_sid != second.provider_sid
    assert len(fake.messages()) == 2


def test_a_new_text_shows_in_the_list_only_after_the_list_delay_but_can_be_fetched_at_once(
    fake: Fake,
) -> None:
    moment = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    fake.state.clock = lambda: moment
    fake.behave(list_delay=30)
    gw = gateway(fake)
    sent = send(gw, "Not listed yet")
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = fake.url
    assert client.messages(sent.provider_sid).fetch().sid == sent.provider_sid

    def find() -> Any:
        return gw.find_sent(to=PATIENT, from_=PRACTICE, body="Not listed yet", since=moment)

    assert find() is None
    moment += timedelta(seconds=30)
    found = find()
    assert found is not None and found.provider_sid == sent.provider_sid


@pytest.mark.parametrize(
    ("fault", "code", "created", "in_doubt"),
    [
        ("429", 20429, False, False),
        ("500", 20500, False, True),
        ("503", 20503, False, True),
        ("timeout_before", None, False, True),
        ("timeout_after", None, True, True),
    ],
)
def test_random_faults_fail_as_twilio_would_and_say_whether_the_text_was_made(
    fake: Fake, fault: str, code: int | None, created: bool, in_doubt: bool
) -> None:
    fake.behave(faults={"seed": 1, "seconds": 1.5, "create": {fault: 1.0}})
    with pytest.raises(SendError) as caught:
        send(gateway(fake, timeout=0.5))
    assert (caught.value.code, caught.value.in_doubt, caught.value.reached) == (
        code,
        in_doubt,
        True,
    )
    (request,) = wait_for(lambda: fake.requests("create"), lambda r: len(r) == 1)
    assert request["fault"] == fault
    assert len(fake.messages()) == (1 if created else 0)
    fake.behave(faults={})
    assert send(gateway(fake)).provider_sid  # and then it answers again


def test_random_faults_are_drawn_at_the_configured_rates_from_a_seed(fake: Fake) -> None:
    fake.behave(faults={"seed": 5, "create": {"429": 0.2, "503": 0.1}})
    outcomes = []
    gw = gateway(fake)
    for n in range(200):
        try:
            send(gw, f"Text {n}")
            outcomes.append("ok")
        except SendError as error:
            outcomes.append(str(error.code))
    counts = {kind: outcomes.count(kind) for kind in ("ok", "20429", "20503")}
    assert sum(counts.values()) == 200
    assert 20 <= counts["20429"] <= 60 and 5 <= counts["20503"] <= 35  # 40 and 20 expected
    assert len(fake.messages()) == counts["ok"]


@pytest.mark.parametrize(
    "behaviour",
    [
        {"list_delay": -1},
        {"faults": {"create": {"429": 0.7, "500": 0.7}}},
        {"faults": {"create": {"418": 0.1}}},
        {"faults": {"upload": {"429": 0.1}}},
        {"faults": {"seconds": 301, "create": {"429": 0.1}}},
    ],
)
def test_fake_twilio_refuses_a_behaviour_it_cannot_follow(fake: Fake, behaviour: dict) -> None:
    request = urllib.request.Request(
        fake.url + "/_fake/behaviour",
        data=json.dumps(behaviour).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        _NO_PROXY.open(request, timeout=30)
    with caught.value as error:
        assert error.code == 400
        assert "error" in json.loads(error.read())
