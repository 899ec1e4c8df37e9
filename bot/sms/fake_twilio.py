"""fake-twilio: the part of Twilio's REST API that prombot uses, for development and tests.

``prombot fake-twilio --port P`` serves it; point prombot at it with
``SMS_GATEWAY=twilio TWILIO_API_URL=http://127.0.0.1:P`` and the same
``TWILIO_ACCOUNT_SID`` / ``TWILIO_AUTH_TOKEN`` on both sides.

Twilio's API, as far as prombot needs it (HTTP basic auth with the account
SID and auth token; Twilio-style JSON errors with ``code``, ``message``,
``more_info`` and ``status``)::

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json        create: To, From, Body,
                                                                StatusCallback, ValidityPeriod
    GET  /2010-04-01/Accounts/{AccountSid}/Messages.json        list: To, From, DateSent,
                                                                DateSent>, DateSent<, PageSize, Page
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json  fetch

After a create, a background thread moves the message through its statuses
(``queued``, ``sent``, ``delivered``; or ``failed`` / ``undelivered`` with an
error code) and POSTs each to the message's StatusCallback (query string
included), signed as Twilio signs (``X-Twilio-Signature``,
``RequestValidator(auth_token)``). Callbacks only go to loopback addresses
(127.0.0.1, localhost, ::1). Like Twilio's, the create takes no idempotency
key: the same request twice makes two messages.

Twilio's Messages list may lag behind a create (Twilio documents no bound);
with ``list_delay`` a new message is listed only that many seconds (on the
fake's clock) after it was created, while fetching it by SID works at once.

The control API (no auth; the server listens on 127.0.0.1) tells it to fail::

    POST /_fake/behaviour  JSON, any of:
        {"fail": [{"status": 429, "count": 2, "on": "create", "retry_after": 3}],
         "slow": [{"seconds": 2.5, "count": 1, "on": "create", "when": "after"}],
         "numbers": {"+447700900999": {"create_error": 21610},
                     "+447700900998": {"status": "undelivered", "error_code": 30003}},
         "callback_delay": 0.05,
         "list_delay": 2.0,
         "faults": {"seed": 7, "seconds": 3, "create": {"429": 0.02, "500": 0.02,
                    "503": 0.02, "timeout_before": 0.02, "timeout_after": 0.02},
                    "list": {"503": 0.05}}}
      ``fail``: the next ``count`` requests of that kind (create, list, fetch or any)
      answer ``status`` (429, 500, 503...) with Twilio's error body; ``slow``: the
      next ``count`` answers wait ``seconds`` (``when`` "after": the request has
      taken effect, e.g. the message exists, before the wait; "before": not yet);
      ``numbers``: per recipient, an error code refused at create time (21610,
      21211, 21614...) or a final status with an error code in the callbacks;
      ``list_delay``: seconds before a new message shows in the list;
      ``faults``: each request of a kind draws one fault at random (seeded) with
      the given probabilities: an HTTP status (429, 500, 503: nothing created),
      ``timeout_before`` (the answer is held ``seconds``, then a 504, and the
      message is never created) or ``timeout_after`` (the message is created,
      then the answer is held ``seconds``); set ``faults`` to {} to stop them.
      Lists replace the pending rules of the same key; numbers are merged.
    GET  /_fake/behaviour  what is set
    POST /_fake/reset      forget every message, request and rule
    GET  /_fake/messages   every message received, with its callbacks' outcomes
    GET  /_fake/requests   every API request: method, kind, answer status, fault drawn
"""

from __future__ import annotations

import base64
import hmac
import random
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

API_VERSION = "2010-04-01"
KINDS = ("create", "list", "fetch")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
CALLBACK_TIMEOUT = 10.0  # seconds per status callback POST
MAX_BODY = 1600
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
FINAL_WITH_ERROR = ("failed", "undelivered")

# Twilio's wording for the errors the fake gives (https://www.twilio.com/docs/api/errors).
ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment.astimezone(UTC)) if moment else None


def _parse_date(text: str) -> datetime | None:
    for pattern in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass
class FakeMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    validity_period: int | None
    date_created: datetime
    status: str = "queued"
    date_sent: datetime | None = None
    date_updated: datetime | None = None
    error_code: int | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The message as Twilio's API shows it."""
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent),
            "date_updated": _rfc2822(self.date_updated or self.date_created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code) if self.error_code else None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(self.body) // 153))),
            "price": None,
            "price_unit": "GBP",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": self.uri.replace(".json", "/Media.json")},
            "to": self.to,
            "uri": self.uri,
        }

    def record(self) -> dict[str, Any]:
        """The message as the control API shows it: what prombot sent, and what came of it."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "status_callback": self.status_callback,
            "validity_period": self.validity_period,
            "date_created": self.date_created.isoformat(),
            "date_sent": self.date_sent.isoformat() if self.date_sent else None,
            "callbacks": list(self.callbacks),
        }


@dataclass
class Rule:
    kind: str  # create, list, fetch or any
    count: int
    status: int = 500
    seconds: float = 0.0
    when: str = "after"
    retry_after: float | None = None
    code: int | None = None

    def applies(self, kind: str) -> bool:
        return self.count > 0 and self.kind in (kind, "any")


class BehaviourError(ValueError):
    pass


FAULTS = ("429", "500", "503", "timeout_before", "timeout_after")


@dataclass
class RandomFaults:
    """Faults drawn at random, per request kind, from a seeded generator."""

    rates: dict[str, dict[str, float]]  # kind -> fault -> probability
    seconds: float  # how long a timeout holds its answer
    rng: random.Random
    seed: int

    def draw(self, kind: str) -> str | None:
        table = self.rates.get(kind) or self.rates.get("any") or {}
        roll = self.rng.random()
        for fault, rate in table.items():
            if roll < rate:
                return fault
            roll -= rate
        return None

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "seconds": self.seconds, **self.rates}


class FakeTwilio:
    """The fake's state: messages, requests seen, and the failures it has been told to give."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        callback_delay: float = 0.05,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.clock = clock
        self.default_callback_delay = callback_delay
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: dict[str, FakeMessage] = {}
            self.requests: list[dict[str, Any]] = []
            self.fail: list[Rule] = []
            self.slow: list[Rule] = []
            self.numbers: dict[str, dict[str, Any]] = {}
            self.callback_delay = self.default_callback_delay
            self.list_delay = 0.0
            self.faults: RandomFaults | None = None

    # -- behaviour -----------------------------------------------------------------------

    def configure(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict):
            raise BehaviourError("behaviour must be a JSON object")
        unknown = set(data) - {"fail", "slow", "numbers", "callback_delay", "list_delay", "faults"}
        if unknown:
            raise BehaviourError(f"unknown keys: {sorted(unknown)}")
        with self.lock:
            if "fail" in data:
                self.fail = [self._rule(r, failing=True) for r in _as_list(data["fail"])]
            if "slow" in data:
                self.slow = [self._rule(r, failing=False) for r in _as_list(data["slow"])]
            if "numbers" in data:
                numbers = data["numbers"]
                if not isinstance(numbers, dict):
                    raise BehaviourError("numbers must map phone numbers to settings")
                for number, settings in numbers.items():
                    self.numbers[number] = self._number(settings)
            if "callback_delay" in data:
                delay = float(data["callback_delay"])
                if not 0 <= delay <= 60:
                    raise BehaviourError("callback_delay must be between 0 and 60 seconds")
                self.callback_delay = delay
            if "list_delay" in data:
                delay = float(data["list_delay"])
                if not 0 <= delay <= 3600:
                    raise BehaviourError("list_delay must be between 0 and 3600 seconds")
                self.list_delay = delay
            if "faults" in data:
                self.faults = self._faults(data["faults"])

    @staticmethod
    def _faults(raw: Any) -> RandomFaults | None:
        if not isinstance(raw, dict):
            raise BehaviourError("faults must be a JSON object")
        if not raw:
            return None
        rates: dict[str, dict[str, float]] = {}
        for kind, table in raw.items():
            if kind in ("seed", "seconds"):
                continue
            if kind not in (*KINDS, "any") or not isinstance(table, dict):
                raise BehaviourError(f"faults: {kind!r} must be one of {KINDS} or 'any', a table")
            if set(table) - set(FAULTS):
                raise BehaviourError(f"faults: each fault must be one of {FAULTS}")
            try:
                rates[kind] = {fault: float(rate) for fault, rate in table.items()}
            except (TypeError, ValueError) as exc:
                raise BehaviourError(f"faults: bad rate in {table!r}") from exc
            if any(r < 0 for r in rates[kind].values()) or sum(rates[kind].values()) > 1:
                raise BehaviourError("faults: rates must be probabilities adding up to at most 1")
        try:
            seed = int(raw.get("seed", 0))
            seconds = float(raw.get("seconds", 3))
        except (TypeError, ValueError) as exc:
            raise BehaviourError("faults: seed must be an integer, seconds a number") from exc
        if not 0 <= seconds <= 300:
            raise BehaviourError("faults: seconds must be between 0 and 300")
        return RandomFaults(rates=rates, seconds=seconds, rng=random.Random(seed), seed=seed)

    @staticmethod
    def _rule(raw: Any, *, failing: bool) -> Rule:
        if not isinstance(raw, dict):
            raise BehaviourError("each rule must be a JSON object")
        kind = raw.get("on", "create")
        if kind not in (*KINDS, "any"):
            raise BehaviourError(f"'on' must be one of {KINDS} or 'any'")
        try:
            rule = Rule(
                kind=kind,
                count=int(raw.get("count", 1)),
                status=int(raw.get("status", 500)),
                seconds=float(raw.get("seconds", 0)),
                when=str(raw.get("when", "after")),
                retry_after=float(raw["retry_after"])
                if raw.get("retry_after") is not None
                else None,
                code=int(raw["code"]) if raw.get("code") is not None else None,
            )
        except (TypeError, ValueError) as exc:
            raise BehaviourError(f"bad rule {raw!r}: {exc}") from exc
        if not 0 <= rule.count <= 10_000:
            raise BehaviourError("count must be between 0 and 10000")
        if failing and not 400 <= rule.status <= 599:
            raise BehaviourError("status must be an HTTP error status")
        if not failing and not 0 <= rule.seconds <= 300:
            raise BehaviourError("seconds must be between 0 and 300")
        if rule.when not in ("before", "after"):
            raise BehaviourError("when must be 'before' or 'after'")
        return rule

    @staticmethod
    def _number(raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise BehaviourError("number settings must be a JSON object")
        settings: dict[str, Any] = {}
        if raw.get("create_error") is not None:
            settings["create_error"] = int(raw["create_error"])
        if raw.get("status") is not None:
            if raw["status"] not in (*FINAL_WITH_ERROR, "delivered", "sent"):
                raise BehaviourError("status must be delivered, sent, failed or undelivered")
            settings["status"] = raw["status"]
        if raw.get("error_code") is not None:
            settings["error_code"] = int(raw["error_code"])
        return settings

    def behaviour(self) -> dict[str, Any]:
        with self.lock:
            return {
                "fail": [r.__dict__ for r in self.fail if r.count > 0],
                "slow": [r.__dict__ for r in self.slow if r.count > 0],
                "numbers": dict(self.numbers),
                "callback_delay": self.callback_delay,
                "list_delay": self.list_delay,
                "faults": self.faults.describe() if self.faults else {},
            }

    def take(self, rules: list[Rule], kind: str) -> Rule | None:
        with self.lock:
            for rule in rules:
                if rule.applies(kind):
                    rule.count -= 1
                    return rule
        return None

    def draw_fault(self, kind: str) -> str | None:
        with self.lock:
            return self.faults.draw(kind) if self.faults else None

    # -- messages ------------------------------------------------------------------------

    def statuses_for(self, to: str) -> tuple[list[str], int | None]:
        settings = self.numbers.get(to, {})
        final = settings.get("status", "delivered")
        code = settings.get("error_code")
        if final in FINAL_WITH_ERROR and code is None:
            code = 30008
        if final == "failed":
            return ["queued", "failed"], code
        if final == "sent":
            return ["queued", "sent"], None
        return ["queued", "sent", final], code if final == "undelivered" else None

    def create(self, form: dict[str, str]) -> FakeMessage:
        now = self.clock()
        validity = form.get("ValidityPeriod")
        message = FakeMessage(
            sid="SM" + secrets.token_hex(16),
            account_sid=self.account_sid,
            to=form["To"],
            from_=form["From"],
            body=form["Body"],
            status_callback=form.get("StatusCallback") or None,
            validity_period=int(validity) if validity else None,
            date_created=now,
            date_updated=now,
        )
        with self.lock:
            self.messages[message.sid] = message
        threading.Thread(
            target=self._progress, args=(message.sid,), name="fake-twilio-callbacks", daemon=True
        ).start()
        return message

    def _progress(self, sid: str) -> None:
        """Move a message through its statuses, calling back after each."""
        with self.lock:
            message = self.messages.get(sid)
            if message is None:
                return
            statuses, error_code = self.statuses_for(message.to)
        for status in statuses:
            time.sleep(self.callback_delay)
            with self.lock:
                if self.messages.get(sid) is not message:
                    return  # reset meanwhile
                now = self.clock()
                message.status = status
                message.date_updated = now
                if status in ("sent", "delivered", "undelivered") and message.date_sent is None:
                    message.date_sent = now
                if status in FINAL_WITH_ERROR:
                    message.error_code = error_code
            if message.status_callback:
                outcome = self._call_back(message, status)
                with self.lock:
                    message.callbacks.append({"status": status, **outcome})

    def _call_back(self, message: FakeMessage, status: str) -> dict[str, Any]:
        url = message.status_callback or ""
        if urllib.parse.urlsplit(url).hostname not in LOCAL_HOSTS:
            return {"error": "fake-twilio only calls back loopback addresses"}
        params = {
            "SmsSid": message.sid,
            "SmsStatus": status,
            "MessageStatus": status,
            "To": message.to,
            "From": message.from_,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
        }
        if status in FINAL_WITH_ERROR and message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        if status == "delivered":
            params["RawDlrDoneDate"] = self.clock().strftime("%y%m%d%H%M")
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        post = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1 (fake-twilio)",
            },
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(post, timeout=CALLBACK_TIMEOUT) as response:
                return {"http_status": response.status}
        except urllib.error.HTTPError as error:
            with error:
                return {"http_status": error.code}
        except OSError as error:
            return {"error": type(error).__name__}

    def listing(self, filters: dict[str, str]) -> list[FakeMessage]:
        listed_before = self.clock() - timedelta(seconds=self.list_delay)

        def keep(message: FakeMessage) -> bool:
            if self.list_delay and message.date_created > listed_before:
                return False  # not in Twilio's list yet
            if "To" in filters and message.to != filters["To"]:
                return False
            if "From" in filters and message.from_ != filters["From"]:
                return False
            for key, test in (
                ("DateSent", lambda d, f: d.date() == f.date()),
                ("DateSent>", lambda d, f: d >= f),
                ("DateSent<", lambda d, f: d <= f),
            ):
                if key in filters:
                    bound = _parse_date(filters[key])
                    if bound is None:
                        raise BehaviourError(f"{key} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")
                    if message.date_sent is None or not test(message.date_sent, bound):
                        return False
            return True

        with self.lock:
            found = [m for m in self.messages.values() if keep(m)]
        # Twilio lists the most recent first.
        return sorted(found, key=lambda m: m.date_created, reverse=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _error(status: int, code: int, message: str | None = None, **headers: str) -> Response:
    response = jsonify(
        {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code, "Error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    )
    response.status_code = status
    for key, value in headers.items():
        response.headers[key.replace("_", "-")] = value
    return response


def create_fake_twilio(
    account_sid: str,
    auth_token: str,
    *,
    state: FakeTwilio | None = None,
) -> Flask:
    """The fake as a Flask app; its state is ``app.extensions["fake_twilio"]``."""
    fake = state or FakeTwilio(account_sid, auth_token)
    app = Flask("fake_twilio")
    app.extensions["fake_twilio"] = fake
    base = f"/{API_VERSION}/Accounts/<account>"

    def authorised(account: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (
            hmac.compare_digest(user, fake.account_sid)
            and hmac.compare_digest(password, fake.auth_token)
            and account == fake.account_sid
        )

    def api(kind: str, account: str, handle: Callable[[], Response]) -> Response:
        """Auth, injected failures and slowness around one API request, logged.

        The request is logged as soon as it has taken effect, before a slow
        answer's wait: tests can see what the fake did while the client waits.
        """
        slow: Rule | None = None
        fault: str | None = None
        hold = 0.0  # seconds the answer is held after the request took effect
        if not authorised(account):
            response = _error(401, 20003, WWW_Authenticate='Basic realm="Twilio API"')
        else:
            slow = fake.take(fake.slow, kind)
            if slow and slow.when == "before":
                time.sleep(slow.seconds)
            failure = fake.take(fake.fail, kind)
            fault = None if failure else fake.draw_fault(kind)
            if failure:
                code = failure.code or {429: 20429, 503: 20503}.get(failure.status, 20500)
                extra = {"Retry_After": f"{failure.retry_after:g}"} if failure.retry_after else {}
                response = _error(failure.status, code, **extra)
            elif fault in ("429", "500", "503"):
                status = int(fault)
                response = _error(status, {429: 20429, 503: 20503}.get(status, 20500))
            elif fault == "timeout_before":
                assert fake.faults is not None
                time.sleep(fake.faults.seconds)  # the client gives up; nothing was created
                response = _error(504, 20500, "Gateway Timeout")
            else:
                response = handle()
                if fault == "timeout_after":
                    assert fake.faults is not None
                    hold = fake.faults.seconds
        with fake.lock:
            fake.requests.append(
                {
                    "method": request.method,
                    "kind": kind,
                    "status": response.status_code,
                    **({"fault": fault} if fault else {}),
                }
            )
        if slow and slow.when == "after":
            time.sleep(slow.seconds)
        if hold:
            time.sleep(hold)
        return response

    @app.post(f"{base}/Messages.json")
    def create_message(account: str) -> Response:
        def handle() -> Response:
            form = request.form
            to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body")
            if not to:
                return _error(400, 21604)
            if not from_:
                return _error(400, 21603)
            if body is None or body == "":
                return _error(400, 21602)
            if len(body) > MAX_BODY:
                return _error(400, 21617)
            if not E164.fullmatch(to):
                return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            validity = form.get("ValidityPeriod")
            if validity and (not validity.isdigit() or not 1 <= int(validity) <= 36_000):
                return _error(400, 21200, "ValidityPeriod must be between 1 and 36000 seconds")
            refused = fake.numbers.get(to, {}).get("create_error")
            if refused:
                return _error(400, refused)
            message = fake.create(dict(form))
            response = jsonify(message.resource())
            response.status_code = 201
            return response

        return api("create", account, handle)

    @app.get(f"{base}/Messages.json")
    def list_messages(account: str) -> Response:
        def handle() -> Response:
            args = request.args
            try:
                size = min(MAX_PAGE_SIZE, max(1, int(args.get("PageSize", DEFAULT_PAGE_SIZE))))
                page = max(0, int(args.get("Page", 0)))
                found = fake.listing({k: v for k, v in args.items() if k != "PageToken"})
            except (ValueError, BehaviourError) as exc:
                return _error(400, 20001, str(exc))
            chunk = found[page * size : (page + 1) * size]
            path = f"/{API_VERSION}/Accounts/{fake.account_sid}/Messages.json"
            filters = {k: v for k, v in args.items() if k not in ("Page", "PageToken", "PageSize")}

            def uri(n: int) -> str:
                query = {**filters, "PageSize": size, "Page": n}
                if n:
                    query["PageToken"] = f"PASM{n:030d}"
                return f"{path}?{urllib.parse.urlencode(query)}"

            more = (page + 1) * size < len(found)
            return jsonify(
                {
                    "messages": [m.resource() for m in chunk],
                    "end": page * size + max(len(chunk) - 1, 0),
                    "first_page_uri": uri(0),
                    "next_page_uri": uri(page + 1) if more else None,
                    "page": page,
                    "page_size": size,
                    "previous_page_uri": uri(page - 1) if page else None,
                    "start": page * size,
                    "uri": uri(page),
                }
            )

        return api("list", account, handle)

    @app.get(f"{base}/Messages/<sid>.json")
    def fetch_message(account: str, sid: str) -> Response:
        def handle() -> Response:
            with fake.lock:
                message = fake.messages.get(sid)
                resource = message.resource() if message else None
            if resource is None:
                return _error(404, 20404, f"The requested resource {request.path} was not found")
            return jsonify(resource)

        return api("fetch", account, handle)

    @app.route("/_fake/behaviour", methods=["GET", "POST"])
    def behaviour() -> Response:
        if request.method == "POST":
            try:
                fake.configure(request.get_json(force=True, silent=True) or {})
            except (BehaviourError, TypeError, ValueError) as exc:
                response = jsonify({"error": str(exc)})
                response.status_code = 400
                return response
        return jsonify(fake.behaviour())

    @app.post("/_fake/reset")
    def reset() -> Response:
        fake.reset()
        return jsonify({"reset": True})

    @app.get("/_fake/messages")
    def messages() -> Response:
        with fake.lock:
            return jsonify({"messages": [m.record() for m in fake.messages.values()]})

    @app.get("/_fake/requests")
    def requests_seen() -> Response:
        with fake.lock:
            return jsonify({"requests": list(fake.requests)})

    @app.get("/")
    def index() -> Response:
        return jsonify({"fake_twilio": True, "account_sid": fake.account_sid})

    return app


@contextmanager
def running(
    account_sid: str,
    auth_token: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[tuple[str, FakeTwilio]]:
    """Serve a fake in a thread of this process: yields its base URL and its state.

    ``clock`` gives the fake's idea of the time (Twilio's dates), for tests.
    """
    state = FakeTwilio(account_sid, auth_token, **({"clock": clock} if clock else {}))
    app = create_fake_twilio(account_sid, auth_token, state=state)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fake-twilio", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}", app.extensions["fake_twilio"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serve(account_sid: str, auth_token: str, *, host: str, port: int) -> None:
    """Serve until interrupted (``prombot fake-twilio``)."""
    from werkzeug.serving import run_simple

    app = create_fake_twilio(account_sid, auth_token)
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
