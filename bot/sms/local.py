"""The local gateway: messages "arrive" the moment they are sent, in the message log.

Used by ``make run`` and the simulator, so a newcomer needs no Twilio account.
The message log is the phone: the simulator page reads it.
"""

from __future__ import annotations

from bot.sms.gateway import Sent


class LocalGateway:
    name = "local"

    def send(self, *, to: str, from_: str, body: str, message_id: str) -> Sent:
        return Sent(provider_sid=f"LM{message_id}", status="delivered")
