"""The words of a notice to staff: the practice, that an urgent alert waits, and a link.

Deliberately nothing else. E-mail and SMS travel through systems outside the
practice and sit on phones' lock screens, so no patient's name, number, NHS
number, answers, score or flag (which would name a condition) ever goes in.
The clinician follows the link and signs in to see who it is about.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    subject: str
    email_body: str
    sms_body: str


def alert_link(public_base_url: str, alert_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/staff/alerts/{alert_id}"


def notice(*, practice_name: str, link: str, kind: str, minutes_open: int) -> Notice:
    """``kind``: ``notify`` (a new alert), ``fallback`` (a new alert no clinician on duty
    could be told of, to the escalation contacts and the practice's contact e-mail) or
    ``escalate`` (still not acknowledged)."""
    if kind == "fallback":
        subject = f"Urgent alert: no clinician on duty could be told - {practice_name}"
        lead = (
            f"An urgent alert at {practice_name} needs a clinician's attention, and no "
            "clinician on duty could be told about it. Please make sure a clinician sees it now."
        )
        sms = (
            f"prombot, {practice_name}: an urgent alert needs a clinician and no one on duty "
            f"could be told. Please make sure a clinician sees it now: {link}"
        )
    elif kind == "escalate":
        subject = f"ESCALATED: urgent alert not yet acknowledged - {practice_name}"
        lead = (
            f"An urgent alert at {practice_name} has not been acknowledged "
            f"{_minutes(minutes_open)} after it was raised."
        )
        sms = (
            f"prombot, {practice_name}: an urgent alert is still not acknowledged "
            f"after {_minutes(minutes_open)}. Please check it now: {link}"
        )
    else:
        subject = f"Urgent alert needs attention - {practice_name}"
        lead = f"An urgent alert at {practice_name} needs a clinician's attention."
        sms = f"prombot, {practice_name}: an urgent alert needs attention. Open it: {link}"
    body = (
        f"{lead}\n\n"
        f"Open the alert (sign-in required):\n{link}\n\n"
        "Please acknowledge it once you have seen it; until someone does, it is "
        "escalated at intervals.\n\n"
        "This message deliberately carries no patient details.\n"
        "-- prombot\n"
    )
    return Notice(subject=subject, email_body=body, sms_body=sms)


def _minutes(minutes: int) -> str:
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} hours"
    if minutes >= 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else "1 hour"
    return f"{minutes} min"
