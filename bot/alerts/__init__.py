"""What a notice to staff about an urgent alert says, and how an e-mail is sent.

The leaves of alerting, with no database and no knowledge of who is told:

- ``texts``: the words of a notice (practice, that an urgent alert waits, a
  link), deliberately without patient details;
- ``email``: ``SMTP_URL`` and handing one message to the mail server.

Who is told, when, and what became of each notice are use cases in the
service layer (``bot.services.alert_notices``, ``alert_routing`` and
``alert_reach``), which call these; nothing here imports ``bot.services``, so
the two packages never import each other.
"""

from bot.alerts.email import SmtpSettings, smtp_settings

__all__ = ["SmtpSettings", "smtp_settings"]
