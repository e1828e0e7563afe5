"""How every cacheable answer leaves: the reader's CORS headers, and 304 from its validators.

An answer's header maps are built once, when it is prepared: one for a reader from any other
origin (or none), and, when origins are listed, one per listed origin. Widgets, their prepared
fast lane and the price history all answer through ``respond``, so none can forget CORS, ``Vary``
or a conditional header that another honours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from aiohttp.hdrs import ORIGIN
from multidict import CIMultiDict

from service.web.cors import EmbedPolicy
from service.web.http_caching import http_date, not_modified

HeaderMaps = tuple[CIMultiDict[str], CIMultiDict[str]]


@dataclass(frozen=True, slots=True)
class Answer:
    """A body with its validators and ready-made header maps (a 200's and a 304's)."""

    body: bytes
    etag: str
    last_modified: float
    #: For a request from an origin that is not listed, or none.
    headers: CIMultiDict[str]
    not_modified_headers: CIMultiDict[str]
    #: With listed origins, the maps for a request from each of them.
    by_origin: dict[str, HeaderMaps] | None


def prepare(
    policy: EmbedPolicy,
    body: bytes,
    content_type: str,
    *,
    etag: str,
    last_modified: float,
    headers: Mapping[str, str],
) -> Answer:
    """An answer to keep and serve many times; ``headers`` are the caching and fixed headers."""
    common = {**headers, "ETag": etag, "Last-Modified": http_date(last_modified)}

    def maps(cors: Mapping[str, str]) -> HeaderMaps:
        # aiohttp copies a ready CIMultiDict far faster than it builds one from a dict.
        unchanged = CIMultiDict({**common, **cors})
        return CIMultiDict({"Content-Type": content_type, **common, **cors}), unchanged

    answer, unchanged = maps(policy.headers_for(None))
    by_origin = None if policy.any_origin else {o: maps(policy.headers_for(o)) for o in policy.origins}
    return Answer(body, etag, last_modified, answer, unchanged, by_origin)


def respond(request: web.Request, answer: Answer, now: float) -> web.Response:
    """200 with the body, or 304 when the reader's copy is current (If-None-Match decides when sent)."""
    headers = request.headers
    ok, unchanged = answer.headers, answer.not_modified_headers
    if answer.by_origin is not None:
        ok, unchanged = answer.by_origin.get(headers.get(ORIGIN, ""), (ok, unchanged))
    if not_modified(request, answer.etag, answer.last_modified, now):
        return web.Response(status=304, headers=unchanged)
    return web.Response(body=answer.body, headers=ok)
