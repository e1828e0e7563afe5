"""Log output: plain lines for a terminal, or one JSON object per line for a log collector.

Log calls that concern a widget or a provider pass ``extra={"widget": …, "provider": …,
"reason": …}``; the JSON format turns those into fields, so a collector filters on them without
parsing messages. The access log is off by default and never records probes: a load balancer
polling ``/readyz`` every second would drown everything else. Nor does it record a request the
HTTP parser rejected: that one has its own line (``service.web.errors``), with the reason.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pythonjsonlogger.json import JsonFormatter

from service.satellite.budget import client_address
from service.web.errors import REJECTED
from service.web.keys import SETTINGS

LogFormat = Literal["text", "json"]

#: With the process id: several workers write to one stream, and a line must say whose it is.
TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"

#: Polled by orchestrators and load balancers, not requested by readers.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/health", "/metrics"})

ACCESS_LOGGER = "service.access"


def configure_logging(level: str, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(
            _JsonFormatter(
                "{asctime}{levelname}{name}{process}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
                # Persian text (widget names, upstream messages) stays readable in the collector.
                json_ensure_ascii=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class _JsonFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # ISO 8601 in UTC with its offset: logging's default is the local wall clock without a
        # zone, which a collector elsewhere (or a server set to Asia/Tehran) would misread.
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class AccessLogger(AbstractAccessLogger):
    """One record per request, with method, path, status, size and duration as fields."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # A rejected request is aiohttp's placeholder, with no headers, route or app to read.
        if request.path in PROBE_PATHS or REJECTED in request:
            return
        # Behind nginx every peer is nginx: the reader is the address a trusted proxy forwards,
        # read as the satellite budget reads it, so a reader cannot name itself.
        forwarded_for = ",".join(request.headers.getall("X-Forwarded-For", ()))
        trusted = request.app[SETTINGS].trusted_proxies if isinstance(request, web.Request) else []
        address = client_address(request.remote, forwarded_for, trusted)
        remote = request.remote if address is None else str(address)
        self.logger.info(
            '%s "%s %s" %d %.1fms',
            remote,
            request.method,
            request.path_qs,
            response.status,
            time * 1000,
            extra={
                "method": request.method,
                "path": request.path_qs,
                "status": response.status,
                "bytes": response.body_length,
                "duration_ms": round(time * 1000, 2),
                "remote": remote,
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
