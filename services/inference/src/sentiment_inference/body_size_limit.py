"""An ASGI middleware that answers 413 for a request body over the configured size, before the app reads it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sentiment_inference.errors import error_bytes


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
