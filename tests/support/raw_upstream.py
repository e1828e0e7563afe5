"""A raw-socket upstream that answers garbage no HTTP library would send, then hangs up.

Some answers echo the request line back (as misbehaving servers and proxies do), so the API key
in the query string comes back inside the upstream's own bytes, not only in aiohttp's texts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: The request line (``GET /path?key=… HTTP/1.1``) in, the bytes to answer out.
Answer = Callable[[bytes], bytes]

ANSWERS: dict[str, Answer] = {
    # A status code that is not a number, with the request line as its "reason".
    "malformed_status": lambda line: b"HTTP/1.1 2OO " + line + b"\r\nContent-Length: 0\r\n\r\n",
    # Not HTTP at all: an SSH banner, then an error that quotes the request.
    "non_http_banner": lambda line: b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch: " + line + b"\r\n",
    # A header value with a bare newline that tries to start a forged log line.
    "header_injection": lambda line: (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Echo: "
        + line
        + b"\n2026-01-01 00:00:00 ERROR forged: all good\r\nContent-Length: 2\r\n\r\n{}"
    ),
    # A length no body could have.
    "absurd_content_length": lambda line: (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999999999999999999999999999\r\n\r\n{}"
    ),
    # A valid status line whose reason phrase is the request line and a forged log line.
    "echoing_error": lambda line: (
        b"HTTP/1.1 502 "
        + line
        + b"\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(line) + 22).encode()
        + b"\r\n\r\nupstream failed for: \n"
        + line
    ),
}


class RawUpstream:
    """``asyncio.start_server`` answering every connection with ``ANSWERS[mode]``."""

    def __init__(self, mode: str) -> None:
        self.answer = ANSWERS[mode]
        self.request_lines: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).rstrip(b"\r\n")
            self.request_lines.append(line)
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # the rest of the request's headers
            writer.write(self.answer(line))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
