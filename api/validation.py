"""What a client may send as text and JSON, checked before anything stores or renders it:
no control characters, strings no longer than the field allows, JSON no deeper than
MAX_NESTING. The top-level fields of a create, ``answers``, PATCH fields, notes and
feedback all go through these same rules."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

from api.errors import ApiError, invalid_field

# Deepest JSON a request body may hold (objects and arrays, the body itself is level 1). A
# create with an object-valued template variable in ``answers`` needs 4; the bound keeps
# every parser, serializer and Temporal's payload converter far from its recursion limit.
MAX_NESTING = 32
# Longest string of a template variable that has no field of its own (the longest field,
# project_description, has this limit too).
MAX_TEXT = 5000
# C0 controls but tab, line feed and carriage return (which free text may hold), DEL, C1
# controls, and lone surrogates (which no UTF-8 encoder takes: a 500 at the database).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_TOKENS = re.compile(rb'["\\\[\]{}]')


def control_character(value: str) -> str | None:
    """The first forbidden character, as ``U+XXXX``, or None."""
    found = _FORBIDDEN.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


class ClientText(BaseModel):
    """Base of the request bodies: no string field holds a control character (400 naming
    the field). A validator on every field rather than a constrained ``str`` type, so that
    the fields' own length limits keep their plain messages."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if isinstance(value, str) and (found := control_character(value)) is not None:
            raise PydanticCustomError(
                "control_character", "must not contain control characters (found {found})", {"found": found}
            )
        return value


class _Answer(ClientText):
    model_config = ConfigDict(str_strip_whitespace=True)


def field_rules(model: type[BaseModel], names: Iterable[str]) -> dict[str, type[BaseModel]]:
    """For each field ``name`` of ``model``, a model of one field ``value`` under exactly
    the same rules: what a value of that name in ``answers`` is checked with."""
    fields = model.model_fields
    return {
        name: create_model(f"Answer_{name}", __base__=_Answer, value=(cast(Any, fields[name].annotation), fields[name]))
        for name in names
    }


def too_deep(body: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON in ``body`` nests objects and arrays deeper than ``limit``: one pass
    over its brackets and quotes, no recursion, no parse (which is what a deep body breaks)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, skip = 0, False, -1
    for match in _TOKENS.finditer(body):
        at = match.start()
        if at == skip:  # the character after a backslash in a string
            continue
        char = body[at]
        if in_string:
            if char == 0x5C:
                skip = at + 1
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False


def nested_too_deep() -> ApiError:
    return ApiError(
        400,
        "invalid_payload",
        "validation",
        f"Request body nests objects and arrays deeper than {MAX_NESTING} levels.",
        details={"field": "body", "max_nesting": MAX_NESTING},
    )


def check_value(field: str, value: Any, *, max_length: int = MAX_TEXT) -> None:
    """A template variable's value as a client sent it: every string in it (keys too) at most
    ``max_length`` characters and free of control characters, every number finite; ApiError
    400 naming ``field``.
    Iterative: the body's nesting is bounded already, this must not recurse either."""
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if len(item) > max_length:
                raise invalid_field(field, f"strings may have at most {max_length} characters")
            found = control_character(item)
            if found is not None:
                raise invalid_field(field, f"must not contain control characters (found {found})")
        elif isinstance(item, float) and not math.isfinite(item):
            # Python's parser takes NaN and Infinity; JSON has neither (PostgreSQL refuses them).
            raise invalid_field(field, "numbers must be finite")
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def check_answers(answers: Mapping[str, Any], *, prefix: str, fields: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """``answers`` as sent, each value under the same rules as the top-level field of its
    name (``fields``, from ``field_rules``: length, characters, type), any other under
    ``check_value``; the values as those rules normalise them. ApiError 400 naming
    ``<prefix><name>``."""
    clean: dict[str, Any] = {}
    for name, value in answers.items():
        check_value(f"{prefix}{name}", name)
        rules = fields.get(name)
        if rules is None:
            check_value(f"{prefix}{name}", value)
            clean[name] = value
            continue
        try:
            clean[name] = rules.model_validate({"value": value}).value  # type: ignore[attr-defined]
        except ValidationError as exc:
            raise invalid_field(f"{prefix}{name}", exc.errors()[0]["msg"]) from None
    return clean


def within_depth(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` (JSON from the database) nests no deeper than ``limit``; about a
    microsecond for the usual flat payload (this runs for every project a list shows). Rows
    stored before the bound existed may not."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if type(item) is dict else item if type(item) is list else ()
        for child in children:
            if type(child) is dict or type(child) is list:
                if depth >= limit:
                    return False
                pending.append((child, depth + 1))
    return True
