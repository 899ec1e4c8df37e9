"""What the engine is told about a practice: its name, phone and nation.

The nation decides the crisis lines a patient is given (Northern Ireland has
no NHS 111), so every place that starts or resumes a conversation goes
through here: dispatch when it starts one, inbound texts and the timers when
they resume one.
"""

from __future__ import annotations

from bot.flows import Context, ConversationState
from bot.flows.signposting import nation_of
from bot.store.models import Practice


def practice_context(practice: Practice, *, continue_if_positive: bool = False) -> Context:
    """What the engine is told about the practice, its nation included (crisis signposting)."""
    return Context(
        practice_name=practice.name,
        practice_phone=practice.contact_phone,
        continue_if_positive=continue_if_positive,
        nation=nation_of(practice.nation),
    )


def with_current_nation(state: ConversationState, practice: Practice) -> ConversationState:
    """The state with the practice's nation as it is now.

    A conversation keeps the context it started with, but crisis signposting
    must follow the practice: a nation corrected mid-questionnaire, or a
    conversation stored before contexts carried a nation, gets the right lines.
    """
    nation = nation_of(practice.nation)
    if state.context.nation == nation:
        return state
    return state.model_copy(update={"context": state.context.model_copy(update={"nation": nation})})
