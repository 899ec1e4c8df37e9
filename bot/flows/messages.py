"""Every text the engine can send, in one place, in plain GSM-7 English.

Rules: no condition is named before the patient has opened the questionnaire
(the intro names the practice, not depression or alcohol); no score unless the
invitation asks for it; every text fits in two SMS segments (306 characters),
which tests/test_messages.py checks for every item of every instrument.
"""

from __future__ import annotations

from bot.flows.answers import answer_hint
from bot.flows.signposting import crisis_lines, text_line
from bot.flows.state import Context
from bot.instruments.gsm7 import MAX_SEPTETS, septets
from bot.instruments.schema import Instrument


def _crisis(context: Context) -> str:
    """999/A&E, the practice's nation's mental health line, Samaritans (crisis_lines.yaml)."""
    return crisis_lines(context.nation)


def _contact(context: Context) -> str:
    if context.practice_phone:
        return f"{context.practice_name} on {context.practice_phone}"
    return context.practice_name


def _options(instrument: Instrument, item_id: str) -> str:
    option_set = instrument.option_set_for(item_id)
    return "\n".join(f"{option_set.key_of(o)} {o.label}" for o in option_set.options)


def item_number(instrument: Instrument, item_id: str) -> str:
    """'Q3/9', or 'Last question' for an item asked only on some answers."""
    item = instrument.item(item_id)
    if item.ask_when is not None:
        return "One more question"
    always = [i.id for i in instrument.items if i.ask_when is None]
    return f"Q{always.index(item_id) + 1}/{len(always)}"


def question_count(instrument: Instrument) -> int:
    return sum(1 for item in instrument.items if item.ask_when is None)


def intro(instrument: Instrument, context: Context, follow_on: Instrument | None = None) -> str:
    count = question_count(instrument)
    size = f"{count} questions"
    if follow_on is not None:
        more = len([i for i in follow_on.items if i.id not in instrument.item_ids])
        size += f" (up to {count + more}, depending on your answers)"
    return (
        f"Hello from {context.practice_name}. As agreed at your appointment, here is a short "
        f"questionnaire: {size}, about 2 minutes. "
        "Please answer each one by text. Reply HELP for help or STOP to opt out."
    )


def question(
    instrument: Instrument, item_id: str, *, with_stem: bool = False, prefix: str = ""
) -> str:
    """One item: its number, its words, its options and how to answer.

    ``prefix`` ("Welcome back.") comes first. ``with_stem`` adds the
    instrument's lead-in ("Over the last 2 weeks...") when it fits. Everything
    must fit in two segments, so what can go goes in this order: the lead-in,
    then the "Reply with..." line (the options already show the keys).
    """
    item = instrument.item(item_id)
    hint = f"\nReply with {answer_hint(instrument.option_set_for(item_id))}"
    core = f"{item_number(instrument, item_id)}: {item.text}\n{_options(instrument, item_id)}"
    stem = f"{instrument.stem}\n" if with_stem else ""
    for candidate in (prefix + stem + core + hint, prefix + core + hint, prefix + core):
        if septets(candidate) <= MAX_SEPTETS:
            return candidate
    return core + hint


def first_question(instrument: Instrument, item_id: str) -> list[str]:
    """The lead-in and the first item: one text when they fit, else two."""
    with_stem = question(instrument, item_id, with_stem=True)
    if with_stem.startswith(instrument.stem):
        return [with_stem]
    return [instrument.stem, question(instrument, item_id)]


def reprompt(
    instrument: Instrument,
    item_id: str,
    attempts: int,
    context: Context,
    *,
    offer_call: bool = True,
) -> str:
    hint = answer_hint(instrument.option_set_for(item_id))
    text = f"Sorry, I didn't understand. Please reply with {hint}:\n{_options(instrument, item_id)}"
    if attempts >= 3 and offer_call:
        text += f"\nOr reply CALL and {context.practice_name} will phone you instead."
    return text


def safety(context: Context) -> str:
    return (
        "If you are thinking of harming yourself, please get help now. "
        f"{_crisis(context)} {text_line()} "
        f"We will let {context.practice_name} know so they can contact you."
    )


def help_text(context: Context) -> str:
    return (
        "Answer with a number or letter. BACK: change answer. "
        "REPEAT: show question. LATER: pause. STOP: opt out. "
        f"Contact {_contact(context)}. {_crisis(context)}"
    )


def help_when_closed(context: Context) -> str:
    return (
        "Your questionnaire has finished; thank you. Reply STOP to get no more texts from us. "
        f"Questions? Contact {_contact(context)}. {_crisis(context)}"
    )


def help_nothing_open(context: Context) -> str:
    return (
        "You have no questionnaire to answer just now. Reply STOP to get no more texts from us. "
        f"Questions? Contact {_contact(context)}. {_crisis(context)}"
    )


def first_question_again(instrument: Instrument, item_id: str) -> str:
    return question(instrument, item_id, prefix="This is the first question.\n")


def going_back(instrument: Instrument, item_id: str, previous_label: str | None) -> str:
    said = f" You answered: {previous_label}." if previous_label else ""
    return question(instrument, item_id, prefix=f"OK, going back.{said}\n")


def carried_over_boundary(instrument: Instrument, item_id: str) -> str:
    return question(
        instrument, item_id, prefix="Your earlier answers are saved and can't be changed now.\n"
    )


def paused(context: Context) -> str:
    return (
        "No problem, we have paused. Text us anything when you are ready to carry on. "
        "Reply STOP to opt out."
    )


def already_paused() -> str:
    return "We are paused. Text us anything when you are ready to carry on."


def welcome_back(instrument: Instrument, item_id: str) -> str:
    return question(instrument, item_id, with_stem=True, prefix="Welcome back.\n")


def callback(context: Context, *, question_open: bool = True) -> str:
    text = f"Thank you. We have asked {context.practice_name} to phone you."
    if question_open:
        text += " You can still reply to the question by text if you prefer."
    return text


def opted_out(context: Context) -> str:
    return (
        f"You have opted out and will get no more questionnaires from {context.practice_name} "
        "by text. Reply START to opt back in."
    )


def opted_in(context: Context) -> str:
    return (
        f"You have opted back in to texts from {context.practice_name}. "
        "They will send your next questionnaire when it is due."
    )


def already_opted_in() -> str:
    return "You are already receiving texts from us."


def continuing(instrument: Instrument, item_id: str) -> str:
    return question(instrument, item_id, prefix="Thank you. A few more questions.\n")


def reminder(context: Context) -> str:
    return (
        f"A reminder from {context.practice_name}: your questionnaire is not finished yet. "
        "Here is where you got to. Reply LATER to pause or STOP to opt out."
    )


def thanks(context: Context, instrument: Instrument, total: int | None) -> str:
    text = (
        "Thank you, that is the end of the questionnaire. "
        f"{context.practice_name} will see your answers."
    )
    if context.show_score and total is not None:
        text += f" Your {instrument.short_title} score is {total}."
    return text + f" If you feel worse or need help, contact {_contact(context)}."


def nothing_open(context: Context) -> str:
    return (
        "Thank you for your message. You have no questionnaire to answer just now. "
        f"If you need help, contact {_contact(context)}. {_crisis(context)}"
    )


def closed(context: Context) -> str:
    return (
        "This questionnaire has finished, so we can't read your reply. "
        f"If you need help, contact {_contact(context)}. {_crisis(context)}"
    )


def media_only() -> str:
    """A picture, voice note or other attachment: the questionnaire needs words."""
    return "Sorry, we can only read text, not pictures or other attachments. Please reply in words."


def stranger() -> str:
    """To a number we do not know: nothing about who we serve, only where to get help.

    UK-wide lines (999, A&E, Samaritans), right in every nation: lines for the
    practice's nation would tell a stranger where the number they texted is.
    """
    return f"Sorry, this number cannot reply. Please contact your GP practice. {crisis_lines('UK')}"
