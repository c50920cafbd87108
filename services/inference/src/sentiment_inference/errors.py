"""One error body for every failure, `{"error": {"code", "message", "details"?}}`, and the handlers that make it.

Bad input is always a 4xx whose message says what to fix; an unexpected exception becomes a uniform 500 body
(logged with its traceback) instead of a bare text response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    type: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorBody(BaseModel):
    """The body of every non-2xx answer."""

    error: ErrorInfo


class ApiError(Exception):
    """Raise anywhere in a handler to answer with the uniform error body."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=dict(headers or {}))


def error_bytes(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


# --- request validation -> messages that say what to fix ----------------------------------------------------
_STATUS_TEXT = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    return ".".join(parts)


def _describe(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    loc = error.get("loc", ())
    field = _field_name(loc)
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


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [
        {"field": _field_name(error.get("loc", ())) or None, "message": _describe(error), "type": error.get("type")}
        for error in errors[:20]
    ]
    invalid_json = any(error.get("type") == "json_invalid" for error in errors)
    message = "; ".join(dict.fromkeys(detail["message"] for detail in details))
    if invalid_json:
        return error_response(400, "invalid_json", message)
    return error_response(422, "invalid_request", message, details)


async def _api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


def unparsable_body_message(cause: BaseException) -> str:
    """What was wrong with a body Python's JSON decoder refused other than by a syntax error."""
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: it is nested too deeply; send a flat JSON object"
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid JSON: it is not valid UTF-8 ({cause.reason} at byte {cause.start})"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "the body is not accepted: a number in it has more than 4300 digits"
    return f"the body could not be parsed as JSON ({type(cause).__name__})"


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 400 and exc.__cause__ is not None:
        # FastAPI turns every body decoding error but a JSON syntax error into a bare 400 "There was an error
        # parsing the body" (invalid UTF-8, nesting past the recursion limit, integers past 4300 digits).
        return error_response(400, "invalid_json", unparsable_body_message(exc.__cause__))
    if status == 404:
        message = f"no route {request.url.path}; see /docs for the API"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method {request.method} is not allowed on {request.url.path}" + (
            f"; use {allowed}" if allowed else ""
        )
    else:
        message = str(exc.detail)
    return error_response(status, _STATUS_TEXT.get(status, f"http_{status}"), message, headers=exc.headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; it was logged. Retry, or report it if it persists")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    # Exception goes to Starlette's outermost ServerErrorMiddleware: even a middleware crash gets the body.
    app.add_exception_handler(Exception, _unexpected_handler)


# --- body size cap ------------------------------------------------------------------------------------------
class BodySizeLimitMiddleware:
    """Answer 413 for a body over `max_bytes`: from Content-Length at once, or while reading a streamed body.

    A pure ASGI middleware: no per-request overhead beyond a header lookup when Content-Length is present.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await self._reject(send, 400, "bad_request", "the Content-Length header is not a number")
                    return
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if length is not None:
            if length > self.max_bytes:
                await self._reject(send, *self._too_large(length))
                return
            # uvicorn enforces Content-Length framing, so the body cannot outgrow it.
            await self.app(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)
            return
        # Streamed body of unknown size: buffer it while counting (our bodies are small JSON documents).
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, *self._too_large(None))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, length: int | None) -> tuple[int, str, str]:
        got = f"is {length} bytes" if length is not None else f"(streamed) is more than {self.max_bytes} bytes"
        return (
            413,
            "body_too_large",
            f"the request body {got}; the maximum is {self.max_bytes} bytes (MAX_BODY_BYTES): send less text"
            " per request",
        )

    @staticmethod
    async def _reject(send: Send, status: int, code: str, message: str) -> None:
        body = error_bytes(code, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
