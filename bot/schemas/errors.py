"""A pydantic ``ValidationError`` as prombot's ``InputError``: the field's path and a sentence.

The first problem found is reported, as ``schedule[0].after`` and
"schedule[0].after must be an ISO-8601 duration ...", the shape the API's
422 answers and the staff forms' error messages both use.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.errors import InputError

# pydantic's own error types, in prombot's words (after the field's name)
MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a field of this request",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a list",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "literal_error": "must be one of {expected}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
}


def field_path(location: tuple[int | str, ...]) -> str:
    """``("schedule", 0, "after")`` as ``schedule[0].after``; the body itself as ``body``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def input_error(exc: ValidationError) -> InputError:
    errors = exc.errors(include_url=False, include_input=False)
    # a field that does not exist ("nhs" for nhs_number) is the mistake to fix first
    return _one(next((e for e in errors if e["type"] == "extra_forbidden"), errors[0]))


def input_errors(exc: ValidationError) -> list[InputError]:
    """Every problem, in the model's order (a staff form shows each by its field)."""
    return [_one(e) for e in exc.errors(include_url=False, include_input=False)]


def _one(error: Any) -> InputError:
    context: dict[str, Any] = error.get("ctx") or {}
    location = tuple(error["loc"])
    if error["type"] == "prombot_field":  # a rule about several fields names its own
        field = context["field"]
        return InputError(field, context["message"])
    field = field_path(location)
    if error["type"] == "prombot":
        message = error["msg"]
    elif error["type"] in MESSAGES:
        message = MESSAGES[error["type"]].format(**context)
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    return InputError(field, f"{field} {message}")


M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or ``InputError`` naming the first field to fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc) from None
