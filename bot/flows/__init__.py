"""The conversation engine: pure functions from (state, message, time) to (state, events).

Nothing here touches Flask, a database, Twilio, a clock or the environment;
``tests/test_core_purity.py`` fails if anything does.
"""

from bot.flows.engine import outcome, resume, start
from bot.flows.events import Event
from bot.flows.outside import respond_to_stranger, respond_without_conversation
from bot.flows.state import Context, ConversationState, Result, Status
from bot.flows.stimuli import ExpiryDue, Inbound, PatientText, ReminderDue

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
    "respond_to_stranger",
    "respond_without_conversation",
    "resume",
    "start",
]
