"""Pydantic validation errors and undecodable bodies, said as messages that tell the client what to fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def field_name(loc: Sequence[Any]) -> str:
    """Pydantic's error location as the client wrote it: `texts.2`, without the leading `body`."""
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts)


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as a sentence that names the field and what to send instead."""
    kind = str(error.get("type", ""))
    loc = error.get("loc", ())
    field = field_name(loc)
    ctx = error.get("ctx") or {}
    value = error.get("input")
    where = f"'{field}'" if field else "the body"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error', 'decode error')} at position {loc[-1] if loc else '?'})"
    if kind == "missing":
        if not field:
            return 'the request body is missing: send a JSON object, e.g. {"text": "a review"}'
        return f"field {where} is required"
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        if isinstance(value, bytes | bytearray):
            return "the body must be a JSON object sent with 'Content-Type: application/json'"
        return f"{where} must be a JSON object, got {_json_kind(value)}"
    if kind == "extra_forbidden":
        return f"unknown field {where}; remove it"
    if kind in ("string_type", "string_sub_type"):
        return f"{where} must be a string, got {_json_kind(value)}"
    if kind == "list_type":
        return f"{where} must be a list of strings, got {_json_kind(value)}"
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "too many"
        return f"{where} is {length} characters long; the maximum is {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"{where} must contain at least {ctx.get('min_length', 1)} item(s)"
    if kind == "too_long":
        size = ctx.get("actual_length", len(value) if isinstance(value, list) else "too many")
        return f"{where} has {size} items; the maximum is {ctx.get('max_length')} per request: split it"
    if kind == "value_error":
        return f"{where} {ctx.get('error', error.get('msg', 'is invalid'))}"
    return f"{where}: {error.get('msg', 'invalid value')}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def unparsable_body_message(cause: BaseException) -> str:
    """What was wrong with a body Python's JSON decoder refused other than by a syntax error."""
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: it is nested too deeply; send a flat JSON object"
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid JSON: it is not valid UTF-8 ({cause.reason} at byte {cause.start})"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "the body is not accepted: a number in it has more than 4300 digits"
    return f"the body could not be parsed as JSON ({type(cause).__name__})"
