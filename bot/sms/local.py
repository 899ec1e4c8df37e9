"""The local gateway: messages "arrive" the moment they are sent, in the message log.

Used by ``make run`` and the simulator, so a newcomer needs no Twilio account.
The message log is the phone: the simulator page reads it. Nothing leaves the
machine, so there is nothing to pace and nothing to look up after a crash: a
text left in flight is simply "sent" again, with the same id.
"""

from __future__ import annotations

from bot.sms.gateway import Sent


class LocalGateway:
    name = "local"
    paced = False  # no provider limit to respect

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        return Sent(provider_sid=f"LM{message_id}", status="delivered")
