"""The one shared HTTP client for every upstream call, and the per-fetch session providers get.

Guards that every provider needs and none should re-implement: connect and total timeouts, a byte
limit enforced while streaming (a 50 MB body is never held in memory), an identifying User-Agent,
redirects followed only within the same host, and conditional requests (ETag / Last-Modified).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from service.settings import HttpSettings


class UpstreamError(Exception):
    """A fetch that produced no usable data.

    ``reason`` is a short, stable label (used in metrics and /health): ``timeout``, ``connect``,
    ``status``, ``too_large``, ``redirect``, ``content_type``, ``parse``, ``validation``,
    ``changed`` (the upstream's format moved), ``config``.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        #: For error statuses: the HTTP status and the start of the body, for providers whose
        #: upstream explains itself there (Open-Meteo's ``{"error": true, "reason": …}``).
        self.status = status
        self.body = body


class NotModified(Exception):
    """The upstream answered 304: the data we hold is still current."""


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class UpstreamResponse:
    url: URL
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def text(self) -> str:
        charset = "utf-8"
        content_type = self.headers.get("Content-Type", "")
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
        return self.body.decode(charset, errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            head = self.body.lstrip()[:1]
            if head == b"<":
                raise UpstreamError("content_type", f"expected JSON from {self.url.host}, got HTML") from None
            raise UpstreamError("parse", f"invalid JSON from {self.url.host}") from None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait, from either form RFC 9110 allows (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    return None if when is None else max(0.0, when - time.time())


class UpstreamClient:
    """Owns the aiohttp ``ClientSession``; one per process."""

    def __init__(self, settings: HttpSettings, session: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self._session = session
        self._owned = session is None

    async def start(self) -> None:
        if self._session is None:
            self._owned = True
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.settings.user_agent},
                # Cookies from one upstream must never ride along to another.
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def close(self) -> None:
        if self._session is not None and self._owned:
            await self._session.close()
        self._session = None

    def session(
        self,
        *,
        timeout_seconds: float,
        user_agent: str | None = None,
        validators: Mapping[str, Mapping[str, str]] | None = None,
    ) -> UpstreamSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return UpstreamSession(
            self._session,
            self.settings,
            timeout_seconds=timeout_seconds,
            user_agent=user_agent,
            validators=validators or {},
        )


class UpstreamSession:
    """One provider fetch's view of the shared client.

    ``validators`` are the ETag / Last-Modified seen with the data we hold; when the upstream
    answers 304 to them, ``get`` raises ``NotModified``. New validators collect in
    ``new_validators`` for the engine to keep with the fresh snapshot.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: HttpSettings,
        *,
        timeout_seconds: float,
        user_agent: str | None,
        validators: Mapping[str, Mapping[str, str]],
    ) -> None:
        self._session = session
        self._settings = settings
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, connect=min(settings.connect_timeout_seconds, timeout_seconds)
        )
        self._user_agent = user_agent
        self._validators = validators
        self.new_validators: dict[str, dict[str, str]] = {}

    async def get(
        self,
        url: str | URL,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = True,
        honour_expires: bool = False,
    ) -> UpstreamResponse:
        """GET with the shared guards.

        ``honour_expires``: the upstream's ``Expires`` is a promise the data will not change
        before then (MET Norway asks clients to respect it), so no request is made until it
        passes; ``NotModified`` is raised instead.
        """
        target = URL(url) if isinstance(url, str) else url
        if params:
            target = target.update_query(params)
        key = str(target)
        request_headers: dict[str, str] = {}
        if self._user_agent:
            request_headers["User-Agent"] = self._user_agent
        if headers:
            request_headers.update(headers)
        held = self._validators.get(key, {}) if conditional else {}
        if honour_expires and held and float(held.get("expires", 0)) > time.time():
            raise NotModified()
        if "etag" in held:
            request_headers["If-None-Match"] = held["etag"]
        if "last_modified" in held:
            request_headers["If-Modified-Since"] = held["last_modified"]
        try:
            response = await self._follow(target, request_headers)
        except TimeoutError:
            raise UpstreamError("timeout", f"{target.host} did not answer in time") from None
        except aiohttp.ClientConnectionError as exc:
            raise UpstreamError("connect", f"cannot reach {target.host}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError("connect", f"{target.host}: {exc}") from None
        if response.status == 304 and held:
            raise NotModified()
        if not 200 <= response.status < 300:
            raise UpstreamError(
                "status",
                f"{target.host} answered HTTP {response.status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status=response.status,
                body=response.body[:4096],
            ) from None
        fresh_validators = {
            name: response.headers[header]
            for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))
            if header in response.headers
        }
        if honour_expires:
            expires = _http_date(response.headers.get("Expires"))
            if expires is not None:
                fresh_validators["expires"] = repr(expires)
        if fresh_validators:
            self.new_validators[key] = fresh_validators
        return response

    async def get_json(self, url: str | URL, **kwargs: Any) -> Any:
        kwargs.setdefault("headers", {"Accept": "application/json"})
        return (await self.get(url, **kwargs)).json()

    async def _follow(self, target: URL, headers: dict[str, str]) -> UpstreamResponse:
        origin_host = target.host
        for _ in range(self._settings.max_redirects + 1):
            async with self._session.get(
                target, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                if resp.status in _REDIRECT_STATUSES and "Location" in resp.headers:
                    nxt = target.join(URL(resp.headers["Location"]))
                    if nxt.host != origin_host:
                        raise UpstreamError(
                            "redirect", f"{origin_host} redirected to another host ({nxt.host})"
                        )
                    target = nxt
                    continue
                body = await self._read_limited(resp)
                return UpstreamResponse(target, resp.status, resp.headers, body)
        raise UpstreamError("redirect", f"{origin_host}: too many redirects")

    async def _read_limited(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self._settings.max_response_bytes
        if resp.content_length is not None and resp.content_length > limit:
            raise UpstreamError(
                "too_large", f"{resp.url.host} sent {resp.content_length} bytes (limit {limit})"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise UpstreamError("too_large", f"{resp.url.host} sent more than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
