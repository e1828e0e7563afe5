"""Requests the HTTP parser rejects: a short JSON 400, and one short line in the log.

Sent over raw sockets to the service as operators run it (``python -m service serve``): no client
library would send these bytes, and the log format and access log are set up by the command.
Each request carries a secret somewhere in its bytes; neither the answer nor the log may echo it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.test_utils import TestClient, TestServer

from service.web.errors import JsonErrorsApplication, rejection_reason
from tests.support.service_process import start_serving_probe
from tests.support.upstream import FakeUpstream

SECRET = "s3cr3t-t0ken-0f-a-reader"

#: Far more than a log line needs; far less than the kilobytes of echoed bytes it replaces.
LINE_LIMIT = 300

#: Each one of these is rejected by aiohttp's parser before any route sees it.
MALFORMED = {
    "a request line without a target": f"GET{SECRET}\r\n\r\n".encode(),
    "a control byte in a header value": (
        f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\x01\r\n\r\n".encode()
    ),
    "8 KB of control bytes in a header value": (
        f"GET / HTTP/1.1\r\nHost: x\r\nX-Token: {SECRET}".encode() + bytes(range(1, 9)) * 1000 + b"\r\n\r\n"
    ),
    "a header longer than the limit": (
        f"GET / HTTP/1.1\r\nHost: x\r\nX-Long: {SECRET}".encode() + b"a" * 9000 + b"\r\n\r\n"
    ),
    "an invalid chunk size": (
        b"POST /widgets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"zz{SECRET}\r\nhello\r\n0\r\n\r\n".encode()
    ),
    "8 KB of binary garbage": SECRET.encode() + bytes(range(256)) * 32,
    "a non-ASCII method": f"گت /?key={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "TLS on the plain HTTP port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + SECRET.encode(),
    # llhttp takes these as HTTP/0.9; the service refuses anything below HTTP/1.0 the same way.
    "a request line without a version": f"GET /?key={SECRET}\r\n\r\n".encode(),
    "an HTTP/0.9 request": f"GET /?key={SECRET} HTTP/0.9\r\n\r\n".encode(),
}

#: A well-formed request sent alongside: the access log, when on, still records it.
WELL_FORMED = b"GET /no/such/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def exchange(port: int, request: bytes) -> Answer:
    """Send raw bytes, read until the service closes the connection, and split the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


async def serve_malformed_requests(
    upstream: FakeUpstream, requests: dict[str, bytes] = MALFORMED, **env: str
) -> tuple[dict[str, Answer], str]:
    """Malformed requests and one well-formed one against a fresh service; its answers and log."""
    process, port = await start_serving_probe(upstream, **env)
    try:
        answers = {name: await exchange(port, request) for name, request in requests.items()}
        assert (await exchange(port, WELL_FORMED)).status == 404
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    return answers, err.decode()


def assert_short_json_400s(answers: dict[str, Answer]) -> list[str]:
    """Each answer is the service's documented error: JSON, no-store, short, echoing nothing."""
    reasons = []
    for name, answer in answers.items():
        assert answer.status == 400, name
        assert answer.headers["content-type"] == "application/json; charset=utf-8", (name, answer)
        assert answer.headers["cache-control"] == "no-store", name
        document = json.loads(answer.body)
        assert list(document) == ["error"] and isinstance(document["error"], str), (name, document)
        assert document["error"].startswith("malformed request: "), (name, document)
        assert len(answer.body) <= 120, (name, answer.body)
        assert SECRET.encode() not in answer.body, name
        reasons.append(document["error"].removeprefix("malformed request: "))
    return reasons


def assert_bounded_line(line: str) -> None:
    assert len(line) <= LINE_LIMIT, line
    assert line.isprintable(), line
    assert SECRET not in line and "\\x" not in line, line


PARAMETERS = pytest.mark.parametrize("access_log", ["true", "false"], ids=["access log on", "access log off"])


@PARAMETERS
async def test_a_malformed_request_is_one_short_json_log_record(upstream: FakeUpstream, access_log: str):
    answers, log = await serve_malformed_requests(
        upstream, SIDEBAR_LOG_FORMAT="json", SIDEBAR_ACCESS_LOG=access_log
    )
    reasons = assert_short_json_400s(answers)

    lines = [line for line in log.splitlines() if line.strip()]
    for line in lines:
        assert_bounded_line(line)
    records = [json.loads(line) for line in lines]
    assert not [r for r in records if "exc_info" in r or r["level"] not in {"INFO", "WARNING"}], records
    rejected = [r for r in records if r["logger"] == "service.web.errors"]
    # One record per request, saying who sent it and why it was refused, as fields.
    assert len(rejected) == len(MALFORMED), records
    assert sorted(r["reason"] for r in rejected) == sorted(reasons)
    assert all(r["level"] == "INFO" and r["status"] == 400 and r["remote"] == "127.0.0.1" for r in rejected)
    access = [r for r in records if r["logger"] == "service.access"]
    expected_access = [("/no/such/page", 404)] if access_log == "true" else []
    assert [(r["path"], r["status"]) for r in access] == expected_access
    # Nothing else: the service's own start and stop, the one access record, the rejections.
    others = [r for r in records if r not in rejected and r not in access]
    assert {r["logger"] for r in others} == {"service"}, others


@PARAMETERS
async def test_a_malformed_request_is_one_short_text_log_line(upstream: FakeUpstream, access_log: str):
    answers, log = await serve_malformed_requests(
        upstream, SIDEBAR_LOG_FORMAT="text", SIDEBAR_ACCESS_LOG=access_log
    )
    reasons = assert_short_json_400s(answers)

    lines = [line for line in log.splitlines() if line.strip()]
    for line in lines:
        assert_bounded_line(line)
    assert "Traceback" not in log and "AttributeError" not in log and "Error handling" not in log, log
    rejected = [line for line in lines if " INFO service.web.errors: " in line]
    assert len(rejected) == len(MALFORMED), log
    for reason in reasons:
        assert any(line.endswith(f"malformed request from 127.0.0.1: {reason}") for line in rejected)
    access = [line for line in lines if " service.access: " in line]
    assert len(access) == (1 if access_log == "true" else 0), log
    # Nothing else: the service's start and stop (the banner has a second line), the access line.
    others = [line for line in lines if line not in rejected and line not in access]
    assert all(" INFO service: " in line or line == "(Press CTRL+C to quit)" for line in others), others


async def test_the_pure_python_parser_never_has_its_messages_echoed(upstream: FakeUpstream):
    # Without aiohttp's C extension the parser's messages are often the client's bytes themselves.
    # That parser waits for a line's end before judging it: TLS bytes without one wait for the
    # keep-alive timeout, and are left out.
    requests = {name: request for name, request in MALFORMED.items() if b"\r\n" in request}
    answers, log = await serve_malformed_requests(
        upstream, requests, SIDEBAR_LOG_FORMAT="json", SIDEBAR_ACCESS_LOG="true", AIOHTTP_NO_EXTENSIONS="1"
    )
    assert_short_json_400s(answers)
    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    for line in log.splitlines():
        assert_bounded_line(line)
    assert len([r for r in records if r["logger"] == "service.web.errors"]) == len(requests), records
    assert not [r for r in records if "exc_info" in r], records


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            BadHttpMessage(f"Invalid header value char:\n\n  b'X: {SECRET}\\x01'\n     ^"),
            "Invalid header value char",
        ),
        (LineTooLong(SECRET.encode() + b"...", 8190), "line too long (limit 8190 bytes)"),
        (InvalidURLError(f"/{SECRET}"), "invalid URL"),
        (BadHttpMethod(SECRET), "invalid method"),
        (BadStatusLine(SECRET), "invalid request line"),
        (InvalidHeader(SECRET.encode()), "invalid header"),
        (TransferEncodingError(f"{SECRET}: not chunked"), "invalid body encoding"),
        (BadHttpMessage(f"Duplicate '{SECRET}' header found."), "bad syntax"),
    ],
)
def test_the_reason_is_llhttps_phrase_or_a_fixed_one_never_the_clients_bytes(
    error: HttpProcessingError, reason: str
):
    assert rejection_reason(error) == reason


async def test_a_fault_outside_the_handlers_own_guard_is_a_json_500_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
):
    app = JsonErrorsApplication()

    async def unguarded(request: web.Request) -> web.Response:
        raise RuntimeError("a fault of the service")

    app.router.add_get("/unguarded", unguarded)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/unguarded")
        assert response.status == 500
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert await response.json() == {"error": "Internal Server Error"}
    faults = [r for r in caplog.records if r.name == "aiohttp.server" and r.exc_info]
    assert faults and isinstance(faults[0].exc_info[1], RuntimeError)  # type: ignore[index]
