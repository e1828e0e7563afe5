"""Every error leaves as JSON ``{"error": "..."}`` with the right status; never a traceback.

Errors carry the same CORS headers as the answers they stand in for, so a page on another origin
reads a 404 or a 503 as such rather than as an opaque network failure.

``endpoint`` wraps each handler (cheaper than an aiohttp middleware, which re-wraps the handler
on every request) and also counts the request for /metrics. Unmatched paths reach ``not_found``
through a catch-all route registered last.

Requests aiohttp's parser rejects never reach a route: ``JsonErrorsApplication`` answers those too,
with one short log line instead of aiohttp's traceback of the request's bytes. So are requests below
HTTP/1.0 (``GET /`` with no version at all), which the parser accepts as HTTP/0.9.

Its connections also answer a client that half-closes (``shutdown(SHUT_WR)``) after asking: aiohttp
would close on the end of its input and drop the answers still owed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion10
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import _ErrInfo

from service.web.cors import FRAME_NONE
from service.web.keys import EMBED, METRICS

log = logging.getLogger(__name__)

JSON_UTF8 = "application/json; charset=utf-8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(http_status: int, message: str, /, **extra: object) -> web.Response:
    body = {"error": message, **extra}
    return web.Response(
        status=http_status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": JSON_UTF8, "Cache-Control": "no-store"},
    )


class RequestError(Exception):
    """Raised by handlers for a 4xx answer with a short reason."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message


def endpoint(route: str) -> Callable[[Handler], Handler]:
    """Errors as JSON, a default CSP, and a request count under ``route``.

    A ``{format}`` in ``route`` is filled from the match, so one resource serving several
    formats still counts them apart.
    """
    by_format = (
        {fmt: route.replace("{format}", fmt) for fmt in ("json", "html")} if "{format}" in route else {}
    )

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                response = await handler(request)
            except RequestError as exc:
                response = json_error(exc.http_status, exc.message)
            except web.HTTPException as exc:
                response = json_error(exc.status, exc.reason) if exc.status >= 400 else exc
            except Exception:
                log.exception("unhandled error on %s %s", request.method, request.path)
                response = json_error(500, "internal error")
            headers = response.headers
            if "Content-Security-Policy" not in headers:
                headers["Content-Security-Policy"] = FRAME_NONE
            if response.status >= 400:
                headers.update(request.app[EMBED].headers_for(request.headers.get("Origin")))
            label = by_format.get(request.match_info.get("format", ""), route) if by_format else route
            request.app[METRICS].count_request(label, response.status)
            return response

        return guarded

    return wrap


@endpoint("unmatched")
async def not_found(request: web.Request) -> web.Response:
    """The catch-all: 405 (with Allow) when another route has this path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical == "/{tail}":
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        response = json_error(405, "Method Not Allowed")
        response.headers["Allow"] = ", ".join(sorted(allowed))
        return response
    return json_error(404, "Not Found")


#: Marks a request the parser rejected: its one log line is written; the access log skips it.
REJECTED = web.RequestKey("rejected", str)

#: The C parser's message: llhttp's fixed reason, then the offending bytes (up to 8 KB, escaped).
_PARSER_MESSAGE = re.compile(r"([A-Za-z][A-Za-z0-9 ./'`-]{0,63}):\n\n  b['\"]")


class VersionBelow10(BadStatusLine):
    """A request line of HTTP/0.9 (or no version at all): the parser takes it, the service does not.

    HTTP/0.9 has no headers, so no ``Host`` and nothing to negotiate with; an answer in kind would be
    a bare body with no status. Refused with a 400 as a malformed request line is.
    """

    def __init__(self) -> None:
        super().__init__(error="HTTP version below 1.0")


#: Most specific first: BadHttpMethod is a BadStatusLine.
_REASON_BY_KIND: tuple[tuple[type[HttpProcessingError], str], ...] = (
    (VersionBelow10, "HTTP version below 1.0"),
    (BadHttpMethod, "invalid method"),
    (BadStatusLine, "invalid request line"),
    (InvalidHeader, "invalid header"),
    (InvalidURLError, "invalid URL"),
    (PayloadEncodingError, "invalid body encoding"),
)


def rejection_reason(exc: HttpProcessingError) -> str:
    """What was wrong, in a few words and never the request's own bytes.

    Only llhttp's reason is kept from aiohttp's message, never the bytes after it. A message of
    another shape (the pure-Python parser's) may be the client's bytes themselves (a path with a
    key, a header with a credential), so it gives way to a fixed phrase for the kind of error.
    """
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        return f"line too long (limit {limit} bytes)" if isinstance(limit, int) else "line too long"
    if match := _PARSER_MESSAGE.match(str(exc.message)):
        return match[1]
    return next((reason for kind, reason in _REASON_BY_KIND if isinstance(exc, kind)), "bad syntax")


class JsonErrorsRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, answering what never reached a route as JSON too.

    ``handle_error`` is aiohttp's last resort, with no app, route or middleware around it: the
    parser's 400s (aiohttp answers them ``text/plain``, echoing the bytes) and faults outside any
    handler (500, 504).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The client has half-closed: it sends nothing more, but still reads what it is owed.
        self._client_sent_all = False

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        # The parser takes HTTP/0.9: queue such a request as a parser error, so it is answered
        # exactly as those are (a JSON 400 in HTTP/1.0, one log line, the connection closed).
        for index in range(queued, len(self._messages)):
            message, _ = self._messages[index]
            if not isinstance(message, _ErrInfo) and message.version < HttpVersion10:
                refused = VersionBelow10()
                self._messages[index] = (_ErrInfo(400, refused, refused.message), EMPTY_PAYLOAD)

    # asyncio's Protocol lets eof_received return True to keep the transport writable; aiohttp's
    # RequestHandler narrows it to None, since it always closes.
    def eof_received(self) -> bool:  # type: ignore[override]
        """The client half-closed: keep the socket open for the answers it is still owed.

        Returning True keeps the transport writable; the connection is closed once those answers
        are out (``_answer_then_close``), or at once when none are. A body the client stopped midway
        is waited for no longer than aiohttp's lingering time, as any unread body is.
        """
        self._client_sent_all = True
        if not self._messages and self._waiter is not None and not self._waiter.done():
            self.force_close()  # idle (waiting for a request, as aiohttp tells it): nothing is owed
        else:
            # Only now does finishing an answer need a look at what is still owed: the hot path
            # of every other connection keeps aiohttp's own finish_response.
            self.finish_response = self._answer_then_close  # type: ignore[method-assign]
        return True

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        if self._client_sent_all:
            # A client that closed altogether looks the same as one that half-closed: its answer
            # is not waited for, as it was not when the end of its input closed the connection.
            if self._task_handler is not None:
                self._task_handler.cancel()
            self.force_close()
            return
        await super().shutdown(timeout)

    async def _answer_then_close(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await web.RequestHandler.finish_response(self, request, resp, start_time)
        finally:
            if not self._messages:
                self.close()  # the last answer owed is out: the handler closes after it

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            # A fault of the service: aiohttp logs it with its traceback, as it should.
            super().handle_error(request, status, exc, message)
            return _closing(json_error(status, HTTPStatus(status).phrase))
        reason = rejection_reason(exc)
        # A client's mistake, not the service's: one line, at INFO, whatever the client sent.
        log.info(
            "malformed request from %s: %s",
            request.remote,
            reason,
            extra={"remote": request.remote, "status": status, "reason": reason},
        )
        request[REJECTED] = reason
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started: no error answer can follow")
        return _closing(json_error(status, f"malformed request: {reason}"))


def _closing(response: web.Response) -> web.Response:
    response.headers["Content-Security-Policy"] = FRAME_NONE
    # As aiohttp's own answer: after a parse error nothing tells where a next request would start.
    response.force_close()
    return response


class _JsonErrorsServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return JsonErrorsRequestHandler(self, loop=self._loop, **self._kwargs)


with warnings.catch_warnings():
    # aiohttp discourages subclassing Application, but offers no other way to choose the
    # connection handler (aio-libs/aiohttp#3287): this subclass only does that.
    warnings.simplefilter("ignore", DeprecationWarning)

    class JsonErrorsApplication(web.Application):
        """An Application whose connections answer parser errors as the service's JSON errors."""

        def _make_handler(
            self, *, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
        ) -> web.Server:
            server = super()._make_handler(loop=loop, **kwargs)
            return _JsonErrorsServer(
                server.request_handler,
                request_factory=server.request_factory,
                handler_cancellation=server.handler_cancellation,
                loop=server._loop,
                **server._kwargs,
            )
