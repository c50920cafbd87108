"""uvicorn's httptools protocol with the limits a server facing clients needs: header size and count, a
header-read and a body-read timeout, and a cap on open connections. Every refusal is the uniform error body.

Why a small subclass rather than another server or uvicorn's h11 options:
- uvicorn has no header-read timeout at all, and httptools (its fast parser) no header size limit: a 100 MB
  header is read whole and a silent or slowloris connection is held for ever (issue 12, items 2 and 3).
- `http="h11"` with `h11_max_incomplete_event_size` bounds the header size only, answers a plain-text 400,
  and parses in pure Python: every request pays for it, and still no read timeout.
- hypercorn has read and keep-alive timeouts, but it is a new dependency, pure-Python h11 parsing as well, and
  the serving benchmark (latency bars) was tuned on uvicorn + httptools.
So: keep uvicorn + httptools and add ~100 lines that count header bytes as they arrive (before httptools
buffers them) and arm one timer per connection. A front proxy (the chart's optional ingress) can add more, but
the service does not rely on one. If a uvicorn upgrade changes these hooks, the HTTP-limit tests fail.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from sentiment_inference.errors import error_bytes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    max_headers: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int


class _RefusedError(Exception):
    """Raised inside a parser callback to stop parsing a request that was already answered."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._read_timer: asyncio.TimerHandle | None = None
        self._reading_head = True  # between requests or inside a request line and headers
        self._head_bytes = 0  # received since the current head began (counted before httptools buffers it)
        self._head_counted = 0  # exact size of the fields parsed so far
        self._header_count = 0
        self._received_any = False
        self._refused = False

    # --- connection ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(
                503,
                "overloaded",
                f"too many open connections (HTTP_MAX_CONNECTIONS={self.limits.max_connections}); retry shortly",
                retry_after=True,
            )
            return
        # Covers a connection that never sends anything as well as one that sends its headers slowly.
        self._arm(self.limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._received_any = True
        if self._reading_head:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except Exception as error:  # our own refusal, or what uvicorn itself handles below
            if self._refused:
                return
            if isinstance(error, _RefusedError):  # pragma: no cover - _refuse always sets the flag first
                return
            self._parser_error(error)
            return
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            # The head is still incomplete and already too large: refuse before httptools buffers more of it.
            self._refuse_head()

    def _parser_error(self, error: Exception) -> None:
        import httptools

        if isinstance(error, httptools.HttpParserUpgrade):
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if isinstance(error, httptools.HttpParserError):
            self._refuse(400, "invalid_http", "the request is not valid HTTP/1.1")
            return
        raise error

    # --- parser callbacks ----------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_counted = 0
        self._header_count = 0
        if self._read_timer is None:  # the first request's timer runs from connection open
            self._arm(self.limits.header_timeout_seconds)

    def on_url(self, url: bytes) -> None:
        self._head_counted += len(url)
        if self._head_counted > self.limits.max_header_bytes:
            self._refuse_head()
            raise _RefusedError
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_counted += len(name) + len(value) + 4
        if self._header_count > self.limits.max_headers or self._head_counted > self.limits.max_header_bytes:
            self._refuse_head()
            raise _RefusedError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._arm(self.limits.body_timeout_seconds)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # --- refusals ------------------------------------------------------------------------------------------
    def _refuse_head(self) -> None:
        self._refuse(
            431,
            "header_too_large",
            f"the request line and headers exceed {self.limits.max_header_bytes} bytes or"
            f" {self.limits.max_headers} fields (HTTP_MAX_HEADER_BYTES, HTTP_MAX_HEADERS): send fewer or"
            " shorter headers",
        )

    def _on_read_timeout(self) -> None:
        self._read_timer = None
        if self._refused or self.transport.is_closing():
            return
        if not self._received_any:  # a silent connection: nothing to answer
            self.transport.close()
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        if self._reading_head:
            part, seconds, variable = "headers", self.limits.header_timeout_seconds, "HTTP_HEADER_TIMEOUT_SECONDS"
        else:
            part, seconds, variable = "body", self.limits.body_timeout_seconds, "HTTP_BODY_TIMEOUT_SECONDS"
        self._refuse(408, "request_timeout", f"the request {part} did not arrive within {seconds:g} s ({variable})")

    def _refuse(self, status: int, code: str, message: str, retry_after: bool = False) -> None:
        """Answer with the uniform error body and close: a refused connection is never read further."""
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # an app task still waiting for the body sees a disconnect
            self.cycle.message_event.set()
        logger.debug("refused a connection from %s: %s %s", self.client, status, code)
        body = error_bytes(code, message)
        head = [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n",
        ]
        if retry_after:
            head.append(b"retry-after: 1\r\n")
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()

    # --- the read timer ------------------------------------------------------------------------------------
    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._on_read_timeout)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None


def guarded_protocol(limits: HttpLimits) -> Any:
    """The protocol factory for `uvicorn.run(http=...)`: a partial pickles, so spawned workers get it too."""
    return functools.partial(GuardedHttpToolsProtocol, limits=limits)
