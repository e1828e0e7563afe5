"""The widget endpoints: envelopes, fragments, caching headers and errors."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from providers.base import Provider
from service.registry import default_registry
from service.settings import EmbedSettings, Settings
from service.web import routes as routes_module
from service.web.app import create_app
from service.web.keys import ENGINE, METRICS, REPRESENTATIONS
from service.web.representations import view_key
from service.web.routes import THEMES
from service.widgets.base import QueryError, WidgetSpec


async def test_widget_list_names_enabled_widgets_and_their_urls(aiohttp_client, upstream, probe_settings):
    client = await aiohttp_client(create_app(probe_settings()))
    response = await client.get("/widgets")
    body = await response.json()
    # It changes only with the configuration: caches may keep it a while.
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert body["widgets"] == [
        {
            "name": "probe",
            "title": "آزمایش",
            "json": "/widgets/probe.json",
            "html": "/widgets/probe.html",
            "refresh_seconds": 60,
        }
    ]


@pytest.mark.parametrize("origins", [["*"], ["https://blog.example.ir"]])
async def test_the_widget_list_is_readable_across_origins_like_the_widgets(
    aiohttp_client, upstream, probe_settings, origins
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings().model_copy(update={"embed": EmbedSettings(allowed_origins=origins)})
    client = await aiohttp_client(create_app(settings))
    for origin in ("https://blog.example.ir", "https://other.example"):
        widget = await client.get("/widgets/probe.json", headers={"Origin": origin})
        listing = await client.get("/widgets", headers={"Origin": origin})
        assert listing.status == 200
        assert _cors(listing) == _cors(widget)


async def test_json_envelope(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 12, "label": "دوازده"})
    client = await aiohttp_client(create_app(probe_settings()))

    response = await client.get("/widgets/probe.json")

    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"widget", "status", "source", "fetched_at", "attribution", "data"}
    assert body["widget"] == "probe" and body["source"] == "probe" and body["status"] == "fresh"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["fetched_at"])
    assert body["attribution"] == "probe upstream"
    assert body["data"] == {"value": 12, "label": "دوازده"}


async def test_never_had_data_is_a_503_envelope_with_the_reason(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 502)
    client = await aiohttp_client(create_app(probe_settings()))

    response = await client.get("/widgets/probe.json")

    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable" and body["data"] is None and body["widget"] == "probe"
    assert "HTTP 502" in body["error"]
    assert not re.search("[\u0600-\u06ff]", body["error"])
    assert response.headers["Cache-Control"] == "no-store"


async def test_unavailable_fragment_is_a_polite_persian_placeholder(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings()))

    response = await client.get("/widgets/probe.html")

    html = await response.text()
    assert response.status == 200
    assert 'data-status="unavailable"' in html
    assert "لطفاً کمی بعد" in html
    assert "500" not in html and "Traceback" not in html


async def test_etag_and_if_none_match_give_304(aiohttp_client, upstream, probe_settings):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings()))
    for path in ("/widgets/probe.json", "/widgets/probe.html"):
        first = await client.get(path)
        etag = first.headers["ETag"]
        assert etag.startswith('W/"')

        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304
        assert await again.read() == b""
        assert again.headers["ETag"] == etag

        other = await client.get(path, headers={"If-None-Match": 'W/"something-else"'})
        assert other.status == 200
    json_tag = (await client.get("/widgets/probe.json")).headers["ETag"]
    html_tag = (await client.get("/widgets/probe.html")).headers["ETag"]
    assert json_tag != html_tag


async def test_etag_changes_when_the_data_changes(aiohttp_client, upstream, probe_settings, clock):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    before = (await client.get("/widgets/probe.json")).headers["ETag"]
    upstream.json("/probe", {"value": 2, "label": "x"})
    await clock.advance(61)

    await client.app[ENGINE].refreshers["probe"].trigger()

    response = await client.get("/widgets/probe.json", headers={"If-None-Match": before})

    assert response.status == 200
    assert response.headers["ETag"] != before


async def test_cache_control_max_age_is_the_time_left_until_the_next_refresh(
    aiohttp_client, upstream, probe_settings
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(
        create_app(
            probe_settings(refresh_seconds=120, stale_while_revalidate_seconds=30, stale_if_error_seconds=600)
        )
    )

    header = (await client.get("/widgets/probe.json")).headers["Cache-Control"]

    max_age = int(re.search(r"(?<!-)max-age=(\d+)", header).group(1))
    assert 118 <= max_age <= 120
    assert f"s-maxage={max_age}" in header
    assert "stale-while-revalidate=30" in header and "stale-if-error=600" in header


async def test_stale_data_says_so_with_no_max_age(aiohttp_client, upstream, probe_settings, clock):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(refresh_seconds=60), clock=clock))
    await client.get("/widgets/probe.json")
    upstream.gate.clear()
    await clock.advance(61)

    response = await client.get("/widgets/probe.json")

    assert (await response.json())["status"] == "stale"
    assert "max-age=0," in response.headers["Cache-Control"]
    html = await (await client.get("/widgets/probe.html")).text()
    assert 'data-status="stale"' in html and "sw-stale" in html


async def test_fragment_is_one_rtl_persian_root_with_scoped_css_and_no_script(
    aiohttp_client, upstream, probe_settings
):
    upstream.json("/probe", {"value": 1234567, "label": "<script>alert(1)</script>"})
    client = await aiohttp_client(create_app(probe_settings()))

    response = await client.get("/widgets/probe.html")
    html = (await response.text()).strip()

    assert response.content_type == "text/html"
    assert html.startswith('<div class="sw-widget sw-probe sw-theme-light" dir="rtl" lang="fa"')
    assert html.endswith("</div>")
    assert 'data-status="fresh"' in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "۱۲۳۴۵۶۷" in html
    selectors = re.findall(r"^([^{}\n]+)\{", html.split("<style>")[1].split("</style>")[0], re.M)
    assert selectors and all(s.startswith((".sw-widget", "@media")) for s in selectors)
    assert all(".sw-widget" in line for line in re.findall(r"@media[^{]+\{([^{}]+)\{", html))


async def test_unknown_widget_is_a_404_json(aiohttp_client, upstream, probe_settings):
    client = await aiohttp_client(create_app(probe_settings()))
    for path in ("/widgets/nope.json", "/widgets/nope.html", "/widgets/links.json"):  # links is disabled here
        response = await client.get(path)
        assert response.status == 404
        assert (await response.json())["error"].startswith("unknown widget")
    response = await client.get("/no/such/route")
    assert response.status == 404 and (await response.json()) == {"error": "Not Found"}


async def test_wrong_method_is_a_405_json(aiohttp_client, upstream, probe_settings):
    client = await aiohttp_client(create_app(probe_settings()))
    response = await client.post("/widgets/probe.json")
    assert response.status == 405
    assert "error" in await response.json()


CORS = ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Vary")


def _cors(response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in CORS}


@pytest.mark.parametrize("origins", [["*"], ["https://blog.example.ir"]])
async def test_errors_are_utf8_json_with_the_cors_of_a_200(aiohttp_client, upstream, probe_settings, origins):
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings().model_copy(update={"embed": EmbedSettings(allowed_origins=origins)})
    client = await aiohttp_client(create_app(settings))
    origin = {"Origin": "https://blog.example.ir"}
    ok = await client.get("/widgets/probe.json", headers=origin)
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] in ("*", origin["Origin"])
    errors = [
        await client.get("/widgets/nope.json", headers=origin),
        await client.get("/widgets/probe.json?theme=neon", headers=origin),
        await client.post("/widgets/probe.json", headers=origin),
        await client.get("/no/such/route", headers=origin),
    ]

    assert [e.status for e in errors] == [404, 400, 405, 404]
    for error in errors:
        assert error.headers["Content-Type"] == "application/json; charset=utf-8"
        assert _cors(error) == _cors(ok)
        assert error.headers["Content-Security-Policy"] == ok.headers["Content-Security-Policy"]


async def test_a_widget_without_data_answers_503_readable_across_origins(
    aiohttp_client, upstream, probe_settings
):
    upstream.fail("/probe", 502)
    client = await aiohttp_client(create_app(probe_settings()))
    response = await client.get("/widgets/probe.json", headers={"Origin": "https://blog.example.ir"})
    assert response.status == 503
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    placeholder = await client.get("/widgets/probe.html")
    assert placeholder.headers["Access-Control-Allow-Origin"] == "*"


class Echo(BaseModel):
    words: list[str]


def _pick(query, options):
    if "only" not in query:
        return {}
    if query["only"] not in {"a", "b"}:
        raise QueryError("only: must be one of a, b")
    return {"only": query["only"]}


class EchoProvider(Provider):
    id = "echo"
    widget = "echo"

    async def fetch(self, http):
        return Echo(words=["a", "b"])


ECHO = WidgetSpec(
    name="echo",
    title="پژواک",
    data_model=Echo,
    default_providers=("echo",),
    default_refresh_seconds=60,
    parse_query=_pick,
    select=lambda data, view, options: (
        {"words": [w for w in data["words"] if w == view["only"]]} if view else data
    ),
)


async def test_a_plug_in_widget_with_query_parameters(aiohttp_client):
    registry = default_registry()
    registry.add_widget(ECHO)
    registry.add_provider(EchoProvider)
    client = await aiohttp_client(create_app(Settings(engine={"background": False}), registry=registry))

    assert (await (await client.get("/widgets/echo.json")).json())["data"] == {"words": ["a", "b"]}
    assert (await (await client.get("/widgets/echo.json?only=b")).json())["data"] == {"words": ["b"]}
    bad = await client.get("/widgets/echo.json?only=zzz")
    assert bad.status == 400
    assert await bad.json() == {"error": "only: must be one of a, b"}
    assert (await client.get("/widgets/echo.html?only=zzz")).status == 400
    tags = {(await client.get(f"/widgets/echo.json{q}")).headers["ETag"] for q in ("", "?only=a", "?only=b")}
    assert len(tags) == 3


def _comparable(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in {"Date", "Content-Length"}}


@pytest.mark.parametrize(
    "path", ["/widgets/probe.json", "/widgets/probe.html", "/widgets/probe.html?theme=dark"]
)
@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        (["*"], None, "*"),
        (["https://blog.example.ir"], "https://blog.example.ir", "https://blog.example.ir"),
        (["https://blog.example.ir"], "https://other.example", None),
        (["https://blog.example.ir"], None, None),
    ],
)
async def test_a_prepared_answer_is_the_same_whichever_way_it_is_served(
    aiohttp_client, upstream, probe_settings, clock, path, origins, origin, allowed
):
    """Plain requests and If-None-Match take the fast lane, If-Modified-Since the full handler:
    both must send the same bytes and headers (CORS for the asking origin), 200 or 304, and
    count them alike."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    settings = probe_settings().model_copy(update={"embed": EmbedSettings(allowed_origins=origins)})
    client = await aiohttp_client(create_app(settings, clock=clock))  # no second boundary
    asking = {"Origin": origin} if origin else {}
    first = await client.get(path, headers=asking)  # prepares the answer

    plain = await client.get(path, headers=asking)
    guarded = await client.get(path, headers={**asking, "If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"})
    fast_304 = await client.get(path, headers={**asking, "If-None-Match": first.headers["ETag"]})
    guarded_304 = await client.get(
        path, headers={**asking, "If-Modified-Since": first.headers["Last-Modified"]}
    )

    assert plain.status == guarded.status == 200 and fast_304.status == guarded_304.status == 304
    assert await plain.read() == await guarded.read()
    assert _comparable(plain) == _comparable(guarded)
    assert _comparable(fast_304) == _comparable(guarded_304)
    for response in (plain, fast_304):
        assert response.headers.get("Access-Control-Allow-Origin") == allowed
        assert response.headers.get("Vary") == (None if origins == ["*"] else "Origin")
    kind = path.split("?")[0].rsplit(".", 1)[1]
    assert client.app[METRICS].http_requests_for(f"/widgets/{{name}}.{kind}") == 5
    text = await (await client.get("/metrics")).text()
    assert f'sidebar_http_requests_total{{route="/widgets/{{name}}.{kind}",status="304"}} 2.0' in text


async def test_answers_prepared_per_query_string_stay_few_however_many_queries_are_invented(
    aiohttp_client, upstream, probe_settings, clock, monkeypatch
):
    monkeypatch.setattr(routes_module, "MAX_PREPARED_VIEWS", 3)
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(), clock=clock))
    queries = [f"?theme={theme}&heading={level}" for theme in THEMES for level in (2, 3, 4)]
    for query in queries:
        assert (await client.get(f"/widgets/probe.html{query}")).status == 200

    hot = client.app[REPRESENTATIONS].hot
    assert len(hot) <= 3
    assert f"/widgets/probe.html{queries[-1]}" in hot  # the newest are the ones kept
    again = await client.get(f"/widgets/probe.html{queries[0]}")  # pushed out: prepared again
    assert again.status == 200 and f"/widgets/probe.html{queries[0]}" in hot


async def test_a_snapshot_landing_while_an_answer_is_prepared_is_the_one_served_next(
    aiohttp_client, upstream, probe_settings, clock
):
    """Preparing a view may wait (a fragment's extra context comes from the shared cache): if a new
    snapshot lands meanwhile, the answer of the old one goes to its reader but is not kept."""
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(), clock=clock))
    refresher = client.app[ENGINE].refreshers["probe"]
    await refresher.current()
    landed = False

    async def enrich(snapshot, view):
        nonlocal landed
        if not landed:
            landed = True
            upstream.json("/probe", {"value": 2, "label": "x"})
            await clock.advance(0.25)  # the same second: a prepared answer would still be current
            await refresher.trigger(force=True)
        return None

    client.app[REPRESENTATIONS].enrichers["probe"] = enrich
    first = await client.get("/widgets/probe.html?theme=dark")
    assert first.status == 200

    again = await client.get("/widgets/probe.html?theme=dark")
    fresh = await client.get("/widgets/probe.html?theme=dark&heading=2")

    def version(response) -> str:  # the snapshot an ETag names
        return response.headers["ETag"].split("-")[0]

    assert version(again) == version(fresh) != version(first)


async def test_queries_that_ask_for_the_plain_view_keep_prepared_answers_within_the_bound(
    aiohttp_client, upstream, probe_settings, clock, monkeypatch
):
    """Unknown parameters ask for the plain view: its answer is kept under the plain path too,
    which the oldest-first eviction pushes out now and then, and must not come back beyond it."""
    monkeypatch.setattr(routes_module, "MAX_PREPARED_VIEWS", 3)
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(), clock=clock))
    for i in range(30):
        assert (await client.get(f"/widgets/probe.html?utm_source=feed{i}")).status == 200

    assert len(client.app[REPRESENTATIONS].hot) <= 3


async def test_an_answer_with_a_query_is_prepared_again_each_second(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings(), clock=clock))
    hot = client.app[REPRESENTATIONS].hot
    path = "/widgets/probe.html?theme=dark"
    for _ in range(3):
        assert (await client.get(path)).status == 200
        assert hot[path].expires_at > clock.time()  # the next request this second takes the fast lane
        await clock.advance(1.5)


class WordProvider(Provider):
    id = "word"
    widget = "word"

    async def fetch(self, http):
        return Echo(words=["a"])


#: A widget whose view is free text; built-in views are as many (prices' ordered items, columns,
#: unit, chart and layout; prayer's dates), just longer to write down.
WORD = WidgetSpec(
    name="word",
    title="واژه",
    data_model=Echo,
    default_providers=("word",),
    default_refresh_seconds=60,
    parse_query=lambda query, options: {"word": query["word"]} if "word" in query else {},
    select=lambda data, view, options: {"words": [view.get("word", "")]},
)


@pytest.mark.parametrize("kind", ["json", "html"])
async def test_views_whose_digests_collide_still_get_their_own_answers(aiohttp_client, kind):
    # Found by a birthday search over a million views, seconds of work for anyone.
    first, second = "w598824", "w952912"
    assert view_key({"word": first}) == view_key({"word": second})
    registry = default_registry()
    registry.add_widget(WORD)
    registry.add_provider(WordProvider)
    client = await aiohttp_client(create_app(Settings(engine={"background": False}), registry=registry))

    answers = [
        await (await client.get(f"/widgets/word.{kind}?word={word}")).read() for word in (first, second)
    ]

    assert answers[0] != answers[1]  # each shows its own word


async def test_a_prepared_stale_fragment_is_not_served_past_the_minute_of_age_it_prints(
    aiohttp_client, upstream, probe_settings, clock
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    await clock.advance(0.5)  # fetched mid-second: its minutes of age turn mid-second too
    client = await aiohttp_client(create_app(probe_settings(), clock=clock))
    assert (await client.get("/widgets/probe.json")).status == 200
    upstream.gate.clear()
    await clock.advance(119.7)  # 119.7 s old: "1 minute ago"
    assert "۱ دقیقه پیش" in await (await client.get("/widgets/probe.html")).text()

    await clock.advance(0.5)  # 120.2 s old, the same second

    assert "۲ دقیقه پیش" in await (await client.get("/widgets/probe.html")).text()
    upstream.gate.set()
