"""Delivery through Twilio's REST API: creates as one POST each on a kept-alive session,
lookups with the official ``twilio`` client.

Every text is created with a status callback URL on PUBLIC_BASE_URL (so
delivery reports reach ``POST /sms/status``) that names the text's own id
(``?message_id=...``; Twilio's signature covers the whole URL, so the id cannot
be altered), and with a validity period, so that a question Twilio could not
hand to the carrier in time is dropped by Twilio rather than delivered hours
late. Twilio's Messages API takes no idempotency key: a create that was never
answered can only be settled by looking the text up (``find_sent``) or by the
delivery report that names it.

Errors are sorted for the outbox:

* 429 and 401: transient, retried with backoff (``Retry-After`` is honoured
  when sent); a connection never made: transient and not *reached* (the
  outbox does not count it as an attempt);
* 5xx, read timeouts and connections cut mid-answer: transient *and in
  doubt*: Twilio may have accepted the text, so it is looked up
  (``find_sent``) before any resend;
* any other 4xx: permanent, with Twilio's error code: 21610 (the recipient
  has replied STOP to this sender), 21211 (not a valid number), 21614 (not a
  mobile), ...

``find_sent`` searches Twilio's Messages list (filters ``To``, ``From``,
``DateSent>``; most recent first, paged) for a text with the same body, for the
outbox's reconciliation after a crash. Twilio documents no bound on how soon a
new message shows in that list, so a search that finds nothing proves
nothing until SMS_LOOKUP_DELAY_SECONDS have passed (see the outbox).

Twilio's HTTP client logs every request's URL and query at INFO (the Messages
list query names the recipient), so its logger is kept at WARNING.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import requests
import structlog
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NameResolutionError, NewConnectionError

from bot.sms.gateway import SendError, Sent

log = structlog.get_logger(__name__)

DEFAULT_VALIDITY_PERIOD = 4 * 60 * 60  # seconds: a question older than this is not worth sending
DEFAULT_TIMEOUT = 10.0  # seconds, per HTTP request to Twilio
LOOKUP_SLACK = timedelta(minutes=10)  # our clock and Twilio's may differ a little
LOOKUP_LIMIT = 100  # records read per search: the recipient's most recent texts
TRIAL_PREFIX = "Sent from your Twilio trial account - "
AUTH_FAILED = 401  # wrong credentials: a configuration fault, not the text's

_HTTP_LOG = logging.getLogger("bot.sms.twilio.http")
_HTTP_LOG.setLevel(logging.WARNING)


class _HttpClient(TwilioHttpClient):
    """Twilio's HTTP client, remembering each thread's last response for its headers.

    ``TwilioRestException`` does not carry the response headers, and a 429's
    ``Retry-After`` lives there.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout, logger=_HTTP_LOG)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self._local.response = None
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response

    def last_headers(self) -> dict[str, str]:
        response = getattr(self._local, "response", None)
        return dict(response.headers or {}) if response is not None else {}


class TwilioGateway:
    """Sends texts through Twilio (or anything speaking its API at ``api_url``)."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        api_url: str = "https://api.twilio.com",
        status_callback: str | None = None,
        validity_period: int = DEFAULT_VALIDITY_PERIOD,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not 1 <= validity_period <= 36_000:
            raise ValueError("validity_period must be between 1 and 36000 seconds")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.status_callback = status_callback
        self.validity_period = validity_period
        self.timeout = timeout
        self._http = _HttpClient(timeout)
        self._client = Client(account_sid, auth_token, account_sid, http_client=self._http)
        # Point the Api domain (api.twilio.com: Messages live there) at TWILIO_API_URL.
        self._client.api.base_url = api_url.rstrip("/")
        # Creates go straight to the Messages resource on one kept-alive session.
        self._messages_url = (
            f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        )
        self._auth = (account_sid, auth_token)
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"

    # -- sending -------------------------------------------------------------------------

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        """Create the message: one POST on a kept-alive session, the answer read for its SID.

        The same request the official client makes (``Messages.json``, form-encoded,
        basic auth), without building and parsing its resource objects for every
        text: a third of a text's time at the unpaced rate. Lookups use the client.
        """
        form: dict[str, str] = {
            "To": to,
            "From": from_,
            "Body": body,
            "ValidityPeriod": str(self.validity_period),
        }
        if self.status_callback:
            form["StatusCallback"] = callback_url(self.status_callback, message_id)
        try:
            response = self._session.post(
                self._messages_url, data=form, auth=self._auth, timeout=self.timeout
            )
            answer = _json(response)
        except requests.RequestException as exc:
            error = _network_error(exc)
        else:
            if 200 <= response.status_code < 300:
                sid = answer.get("sid") if isinstance(answer, dict) else None
                if isinstance(sid, str) and sid:
                    log.info("twilio.sent", message_id=message_id, message_sid=sid)
                    return Sent(
                        provider_sid=sid,
                        status=str(answer.get("status") or "queued"),
                        error_code=_int_or_none(answer.get("error_code")),
                    )
                # A 2xx answer we could not read: it may have gone.
                error = SendError(None, "unreadable answer", permanent=False, in_doubt=True)
            else:
                code = answer.get("code") if isinstance(answer, dict) else None
                error = self._http_error(
                    response.status_code, _int_or_none(code), dict(response.headers)
                )
        log.warning(
            "twilio.send_failed",
            message_id=message_id,
            error_code=error.code,
            permanent=error.permanent,
            in_doubt=error.in_doubt,
        )
        raise error

    def _http_error(self, status: int, code: int | None, headers: dict[str, str]) -> SendError:
        if status == 429 or status >= 500:
            return SendError(
                code or status,
                f"Twilio answered {status}",
                permanent=False,
                # Throttled requests were not acted on; a server error may have been.
                in_doubt=status >= 500,
                retry_after=_retry_after(headers),
            )
        if status == AUTH_FAILED:
            log.error("twilio.authentication_failed", error_code=code)
            return SendError(code, "Twilio refused our credentials", permanent=False)
        return SendError(code or status, f"Twilio refused the text ({code})", permanent=True)

    # -- looking up ----------------------------------------------------------------------

    def find_sent(
        self,
        *,
        to: str,
        from_: str,
        body: str,
        since: datetime,
        exclude: Collection[str] = (),
    ) -> Sent | None:
        """Twilio's record of this text, searched by recipient, sender, time and body.

        Two searches: texts sent since ``since`` (Twilio's ``DateSent>``), then
        the recipient's most recent texts whatever their sent date (a text Twilio
        still holds in its queue has none yet).
        """
        after = since - LOOKUP_SLACK
        wanted = body.strip()
        for dated in (True, False):
            query: dict[str, Any] = {"to": to, "limit": LOOKUP_LIMIT, "page_size": 50}
            if from_:
                query["from_"] = from_
            if dated:
                query["date_sent_after"] = after
            try:
                for record in self._client.messages.stream(**query):
                    if record.sid in exclude:
                        continue
                    if not str(record.direction or "outbound").startswith("outbound"):
                        continue
                    if record.date_created is not None and record.date_created < after:
                        continue
                    text = (record.body or "").strip()
                    if text not in (wanted, TRIAL_PREFIX + wanted):
                        continue
                    return Sent(
                        provider_sid=record.sid,
                        status=str(record.status or "queued"),
                        error_code=_int_or_none(record.error_code),
                    )
            except (TwilioRestException, TwilioServiceException) as exc:
                raise SendError(_int_or_none(exc.code), "lookup refused", permanent=False) from exc
            except (requests.RequestException, TwilioException) as exc:
                raise SendError(None, f"lookup failed: {exc}", permanent=False) from exc
        return None


def callback_url(base: str, message_id: str) -> str:
    """The status callback URL for one text: ``base`` with ``message_id`` in its query."""
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "message_id"] + [("message_id", message_id)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _network_error(exc: requests.RequestException) -> SendError:
    if _never_reached(exc):
        return SendError(None, "Twilio could not be reached", permanent=False, reached=False)
    return SendError(
        None, f"no answer from Twilio: {type(exc).__name__}", permanent=False, in_doubt=True
    )


def _never_reached(exc: requests.RequestException) -> bool:
    """True when the request certainly never arrived (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | NameResolutionError)
    return False


def _retry_after(headers: dict[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                return None  # an HTTP date: rare from Twilio; the backoff will do
            return seconds if seconds >= 0 else None
    return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
