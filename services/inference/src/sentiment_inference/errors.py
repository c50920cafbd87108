"""One error body for every failure, `{"error": {"code", "message", "details"?}}`, and the handlers that make it.

What the messages say: validation_messages; the body size cap: body_size_limit.

Bad input is always a 4xx whose message says what to fix; an unexpected exception becomes a uniform 500 body
(logged with its traceback) instead of a bare text response.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from sentiment_inference.validation_messages import describe, field_name, unparsable_body_message

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


_STATUS_TEXT = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    details = [
        {"field": field_name(error.get("loc", ())) or None, "message": describe(error), "type": error.get("type")}
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
