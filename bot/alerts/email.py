"""Sending one alert e-mail through the server named by ``SMTP_URL``.

``SMTP_URL`` forms (unset, empty or ``none``: e-mail alerts off):

- ``smtp://host:port``: plain SMTP (port 25 when left out), as a local relay takes it;
- ``smtp://host:587?starttls=1``: upgrade the connection with STARTTLS first;
- ``smtps://host:465``: SMTP over TLS from the start;
- ``smtp://user:password@host:port``: log in first (percent-encode odd characters);
- ``?from=alerts@practice.example``: the sender (default ``prombot@localhost``);
- ``?timeout=10``: seconds to wait for the server (default 10).
"""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SENDER = "prombot@localhost"
DEFAULT_TIMEOUT = 10.0
_OFF = {"", "none", "off", "false", "0"}
_TRUE = {"1", "true", "yes", "on"}
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = DEFAULT_SENDER
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:  # never print the password
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.tls}, "
            f"starttls={self.starttls}, username={self.username!r}, sender={self.sender!r})"
        )


def smtp_settings(url: str | None) -> SmtpSettings | None:
    """The settings in an ``SMTP_URL``, or None when e-mail alerts are off."""
    if url is None or str(url).strip().lower() in _OFF:
        return None
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if tls else 25)
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise ValueError("SMTP_URL has a bad port or timeout") from exc
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        tls=tls,
        starttls=not tls and query.get("starttls", "").lower() in _TRUE,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        sender=query.get("from") or DEFAULT_SENDER,
        timeout=timeout,
    )


def build_email(
    settings: SmtpSettings, *, to: str, subject: str, body: str, now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand one message to the server; raises ``smtplib.SMTPException`` or ``OSError``."""
    if settings.tls:
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host,
            settings.port,
            timeout=settings.timeout,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.starttls:
            client.starttls(context=ssl.create_default_context())
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(message)


def short_error(exc: BaseException) -> str:
    """What went wrong, in a line, without repeating addresses back (at most 200 characters)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, reply = next(iter(exc.recipients.values()))
        text = f"SMTP {code}: {_decode(reply)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"SMTP {exc.smtp_code}: {_decode(exc.smtp_error)}"
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{type(exc).__name__}: {exc.strerror}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(_ADDRESS.sub("<address>", text).split())[:200]


def _decode(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
