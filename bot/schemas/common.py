"""Shapes every part of the API shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    """A field that may be left out is not therefore null: drop pydantic's ``default: null``
    (the field's own schema says whether null is allowed)."""
    for field in schema.get("properties", {}).values():
        if "default" in field and field["default"] is None:
            del field["default"]


def request_config(**schema_extra: Any) -> ConfigDict:
    """A request model's config, adding ``schema_extra`` (rules over several fields) to its
    JSON Schema."""

    def extra(schema: dict[str, Any]) -> None:
        _absent_is_not_null(schema)
        schema.update(schema_extra)

    return ConfigDict(extra="forbid", json_schema_extra=extra)


class Request(BaseModel):
    """A request body or query: unknown fields are refused, naming the field."""

    model_config = request_config()


class Answer(BaseModel):
    """A response body: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


class ApiError(BaseModel):
    """Every error under /api/v1, whatever its status."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["error"]})

    error: str = Field(description="what went wrong, in a sentence")
    field: str | None = Field(
        None,
        description="the field to fix, when one is to blame: a name, `schedule[0].after`, "
        "or `body` for the body as a whole",
    )


class Empty(Request):
    """No parameters."""
