"""The one shared HTTP client for every upstream call, and the per-fetch session providers get.

Guards that every provider needs and none should re-implement: connect and total timeouts, a byte
limit enforced while streaming (a 50 MB body is never held in memory), an identifying User-Agent,
redirects followed only within the same host, and conditional requests (ETag / Last-Modified).
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from providers.parsing import ParseCall, ParsePool, WorkerDied
from providers.redaction import printable, redact
from service.settings import HttpSettings

__all__ = [
    "NotModified",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamResponse",
    "UpstreamSession",
    "parse_retry_after",
    "printable",
    "redact",
]

P = ParamSpec("P")
T = TypeVar("T")

#: Longest message an ``UpstreamError`` carries (it ends up in /health, JSON and log lines).
MESSAGE_LIMIT = 500


class UpstreamError(Exception):
    """A fetch that produced no usable data.

    ``reason`` is a short, stable label (used in metrics and /health): ``timeout``, ``connect``,
    ``status``, ``too_large``, ``redirect``, ``content_type``, ``parse``, ``validation``,
    ``changed`` (the upstream's format moved), ``config``.

    The message is what /health ``lastError``, the 503 envelope and the logs show, so it is made
    safe here, whoever raises: credential-like query values and ``secrets`` redacted, control and
    bidi characters escaped, length bounded. Only the client knows a provider's literal secrets;
    it passes them in.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        body: bytes = b"",
        secrets: Iterable[str] = (),
    ) -> None:
        secrets = tuple(secrets)
        super().__init__(printable(redact(message, secrets), MESSAGE_LIMIT))
        self.reason = reason
        self.retry_after = retry_after
        #: For error statuses: the HTTP status and the start of the body, for providers whose
        #: upstream explains itself there (Open-Meteo's ``{"error": true, "reason": …}``). Raw
        #: bytes for parsing, never for display: whoever shows a part of it passes it through
        #: ``printable(redact(…))``. Known secrets are already blanked out of it by the client.
        self.status = status
        self.body = _without(body, secrets)

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised in a parsing process and pickled back: rebuilt as it is, since its message is
        # already made safe (the default would call __init__ with the message alone and fail).
        return _rebuild_error, (type(self), str(self), dict(self.__dict__))


def _rebuild_error(cls: type[UpstreamError], message: str, state: dict[str, Any]) -> UpstreamError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


def _without(body: bytes, secrets: Iterable[str]) -> bytes:
    for secret in secrets:
        if len(secret) >= 4:
            body = body.replace(secret.encode(), b"***")
    return body


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
    def text_charset(self) -> str:
        """The charset the upstream declared (UTF-8 when it declared none or an unknown one)."""
        content_type = self.headers.get("Content-Type", "")
        if "charset=" in content_type:
            charset = content_type.split("charset=", 1)[1].split(";")[0].strip().strip('"')
            try:
                return codecs.lookup(charset).name if charset else "utf-8"
            except LookupError:
                return "utf-8"
        return "utf-8"

    @property
    def text(self) -> str:
        return self.body.decode(self.text_charset, errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            head = self.body.lstrip()[:1]
            if head == b"<":
                raise UpstreamError("content_type", f"expected JSON from {self.url.host}, got HTML") from None
            raise UpstreamError("parse", f"invalid JSON from {self.url.host}") from None


def is_credential(name: str) -> bool:
    """Whether a query parameter's name marks its value as a credential (``key``, ``api_key``…)."""
    return redact(f"{name}=x") != f"{name}=x"


def _describe(exc: BaseException) -> str:
    """An aiohttp exception as its class and a short reason, never its ``str`` (which has the URL).

    ``ClientResponseError.message`` is aiohttp's parser complaint, first line only (the rest
    quotes the upstream's bytes); OS errors give their ``strerror``. Both are still upstream- or
    OS-made text, so ``UpstreamError`` redacts and escapes them like everything else.
    """
    name = type(exc).__name__
    detail = ""
    if isinstance(exc, aiohttp.ClientResponseError):
        detail = str(exc.message).strip().splitlines()[0] if str(exc.message).strip() else ""
    elif isinstance(exc, aiohttp.ClientConnectorError):
        detail = exc.os_error.strerror or ""
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        detail = "the connection was closed"
    return f"{name} ({detail[:80]})" if detail else name


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


def _float(value: str | None) -> float:
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait, from either form RFC 9110 allows (delta-seconds or an HTTP date).

    An HTTP date is measured against ``now`` (the engine's shared clock), not this host's clock.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too, and float() refuses it
        return float(value)
    when = _http_date(value)
    return None if when is None else max(0.0, when - now)


def _storable_validator(value: str, secrets: tuple[str, ...]) -> bool:
    """A validator we may keep with the snapshot (in Redis) and send back next time.

    ETag and Last-Modified are visible ASCII by definition; anything else (bytes aiohttp decoded
    with surrogates, control characters) cannot be stored or sent. One that carries a secret (an
    upstream echoing our key) is not stored either.
    """
    if not value or len(value) > 512 or not value.isascii() or not value.isprintable():
        return False
    return not any(secret and secret in value for secret in secrets)


#: The pool of callers that do not name one (e.g. a plug-in not yet updated).
DEFAULT_POOL = "default"


class UpstreamClient:
    """The process's upstream HTTP client: one connection pool per provider.

    Each pool (``session(pool=provider id)``) has its own aiohttp ``ClientSession`` and connector,
    limited to ``[http] max_connections_per_provider``: a hanging tile source can fill its own
    pool, never the one price and weather refreshes use. Pools are created on first use.
    An injected ``session`` (a test seam) serves every pool and stays owned by the caller.

    It also owns the parsing processes (``[http] parse_workers``), started on the first
    ``parse`` and stopped by ``close``.
    """

    def __init__(
        self,
        settings: HttpSettings,
        now: Callable[[], float],
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        #: The clock HTTP dates (Retry-After, Expires) are measured on, and what "today" is for
        #: providers; the engine sets its shared clock here, so a host whose clock is off still
        #: waits as long as asked.
        self.now = now
        self._injected = session
        self._pools: dict[str, aiohttp.ClientSession] = {}
        self._parsing = ParsePool(settings.parse_workers)
        self._started = False

    async def start(self) -> None:
        self._started = True
        if self._parsing.closed:  # started again after close()
            self._parsing = ParsePool(self.settings.parse_workers)

    async def close(self) -> None:
        self._started = False
        pools, self._pools = list(self._pools.values()), {}
        await asyncio.gather(self._parsing.close(), *(pool.close() for pool in pools), return_exceptions=True)

    @property
    def parsing(self) -> ParsePool:
        """The parsing processes (for tests and diagnostics; providers use ``session.parse``)."""
        return self._parsing

    async def parse(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a parsing process (see ``UpstreamSession.parse``)."""
        try:
            return await self._parsing.run(fn, *args, **kwargs)
        except WorkerDied as exc:
            raise UpstreamError("parse", f"{exc} (a new one starts with the next parse)") from None

    @property
    def pools(self) -> tuple[str, ...]:
        """The pools opened so far (for tests and diagnostics)."""
        return tuple(self._pools)

    def _pool(self, name: str) -> aiohttp.ClientSession:
        if self._injected is not None:
            return self._injected
        pool = self._pools.get(name)
        if pool is None or pool.closed:
            pool = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.max_connections_per_provider),
                headers={"User-Agent": self.settings.user_agent},
                # Cookies from one upstream must never ride along to another.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._pools[name] = pool
        return pool

    def session(
        self,
        *,
        timeout_seconds: float,
        user_agent: str | None = None,
        validators: Mapping[str, Mapping[str, str]] | None = None,
        pool: str = DEFAULT_POOL,
        secrets: Iterable[str | None] = (),
    ) -> UpstreamSession:
        """One fetch's session on ``pool`` (the provider id).

        ``secrets`` (the provider's api_key) are redacted from every error text this session
        produces, wherever aiohttp or the upstream puts them.
        """
        if not self._started and self._injected is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return UpstreamSession(
            self._pool(pool),
            self.settings,
            timeout_seconds=timeout_seconds,
            user_agent=user_agent,
            validators=validators or {},
            secrets=tuple(secret for secret in secrets if secret),
            now=self.now,
            parse=self.parse,
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
        now: Callable[[], float],
        secrets: tuple[str, ...] = (),
        parse: ParseCall | None = None,
    ) -> None:
        self._session = session
        self._now = now
        self._parse = parse
        self._settings = settings
        self._timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, connect=min(settings.connect_timeout_seconds, timeout_seconds)
        )
        self._user_agent = user_agent
        self._validators = validators
        self._secrets = secrets
        self.new_validators: dict[str, dict[str, str]] = {}

    def now(self) -> float:
        """The engine's shared clock (epoch seconds): what "today" is for computed widgets."""
        return self._now()

    @property
    def secrets(self) -> tuple[str, ...]:
        """What providers must redact from texts they build from an upstream's answer."""
        return self._secrets

    def error(self, reason: str, message: str, **kwargs: Any) -> UpstreamError:
        """An ``UpstreamError`` with this session's secrets redacted from it."""
        return UpstreamError(reason, message, secrets=self._secrets, **kwargs)

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
        secrets = self._secrets
        if params:
            target = target.update_query(params)
            # A credential passed as a parameter is a secret even if the caller forgot to say so.
            secrets += tuple(value for name, value in params.items() if value and is_credential(name))
        # Validators are stored with the snapshot (in Redis): keyed by the URL without its secrets.
        key = redact(str(target), secrets)
        request_headers: dict[str, str] = {}
        if self._user_agent:
            request_headers["User-Agent"] = self._user_agent
        if headers:
            request_headers.update(headers)
        held = self._validators.get(key, {}) if conditional else {}
        if honour_expires and held and _float(held.get("expires")) > self._now():
            raise NotModified()
        if "etag" in held:
            request_headers["If-None-Match"] = held["etag"]
        if "last_modified" in held:
            request_headers["If-Modified-Since"] = held["last_modified"]
        # aiohttp's exception texts carry the full request URL (query string, API key and all) and
        # whatever bytes the upstream sent: they are never formatted. The message names the host,
        # the exception class and at most a one-line, redacted reason.
        host = target.host or "upstream"
        try:
            response = await self._follow(target, request_headers)
        except UpstreamError as exc:
            raise UpstreamError(
                exc.reason, str(exc), retry_after=exc.retry_after, status=exc.status, secrets=secrets
            ) from None
        except TimeoutError:
            raise UpstreamError("timeout", f"{host} did not answer in time") from None
        except aiohttp.ClientConnectionError as exc:
            raise UpstreamError(
                "connect", f"cannot reach {host}: {_describe(exc)}", secrets=secrets
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError("connect", f"{host}: {_describe(exc)}", secrets=secrets) from None
        if response.status == 304 and held:
            raise NotModified()
        if not 200 <= response.status < 300:
            raise UpstreamError(
                "status",
                f"{host} answered HTTP {response.status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After"), self._now()),
                status=response.status,
                body=response.body[:4096],
                secrets=secrets,
            ) from None
        fresh_validators = {
            name: response.headers[header]
            for name, header in (("etag", "ETag"), ("last_modified", "Last-Modified"))
            if _storable_validator(response.headers.get(header, ""), secrets)
        }
        if honour_expires:
            expires = _http_date(response.headers.get("Expires"))
            if expires is not None:
                fresh_validators["expires"] = repr(expires)
        if fresh_validators:
            self.new_validators[key] = fresh_validators
        return response

    async def parse(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` in a parsing process, for work too heavy for the event loop.

        ``fn`` must be a module-level function, its arguments and result picklable and small
        (an answer's bytes in, plain data out). What ``fn`` raises is raised here; a worker that
        dies is an ``UpstreamError("parse")`` and the next parse gets a new one.
        """
        if self._parse is None:  # a session built without a client: a thread still spares the loop
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await self._parse(fn, *args, **kwargs)

    async def get_json(self, url: str | URL, **kwargs: Any) -> Any:
        """GET and decode JSON in a worker thread (a large body must not stall the event loop)."""
        kwargs.setdefault("headers", {"Accept": "application/json"})
        response = await self.get(url, **kwargs)
        return await asyncio.to_thread(response.json)

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
