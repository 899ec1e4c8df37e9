"""The conversation engine: pure functions from (state, message, time) to (state, events).

Nothing here touches Flask, a database, Twilio, a clock or the environment;
``tests/test_core_purity.py`` fails if anything does.
"""

from bot.flows.engine import outcome, resume, start
from bot.flows.events import Event
from bot.flows.inbound import ExpiryDue, Inbound, PatientText, ReminderDue
from bot.flows.state import Context, ConversationState, Result, Status

__all__ = [
    "Context",
    "ConversationState",
    "Event",
    "ExpiryDue",
    "Inbound",
    "PatientText",
    "ReminderDue",
    "Result",
    "Status",
    "outcome",
    "resume",
    "start",
]
