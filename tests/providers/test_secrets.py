"""No API key leaves the process: not in error texts, /health, the 503 envelope or a log line."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from providers.brsapi import BrsApiProvider
from providers.http import UpstreamClient, UpstreamError, printable, redact
from providers.navasan import NavasanProvider
from service.settings import EngineSettings, HttpSettings, Settings
from service.web.app import create_app
from service.web.keys import ENGINE
from service.widgets import BUILTIN_WIDGETS
from tests.support.clock import FakeClock
from tests.support.fixtures import fixture_text
from tests.support.prices import fetch_once
from tests.support.raw_upstream import ANSWERS, RawUpstream
from tests.support.upstream import FakeUpstream

KEY = "Fz8kQ2vLr7XmN4pW"
#: ``key=`` (any prefix: ``apikey=``, ``api_key=``) followed by anything but the redaction mark.
UNREDACTED_PAIR = re.compile(r"key=(?!\*\*\*)", re.IGNORECASE)


def assert_secret_free(text: str) -> None:
    assert KEY not in text
    assert UNREDACTED_PAIR.search(text) is None, text


@pytest.fixture(params=sorted(ANSWERS))
async def raw(request: pytest.FixtureRequest) -> AsyncIterator[RawUpstream]:
    server = await RawUpstream(request.param).start()
    yield server
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream_client = UpstreamClient(HttpSettings(), FakeClock().time)
    await upstream_client.start()
    yield upstream_client
    await upstream_client.close()


# -- the functions ----------------------------------------------------------------------------


def test_redact_blanks_credential_query_values_whatever_their_spelling() -> None:
    text = (
        "url='https://x.test/a?lat=34.5&key=abc123&API_KEY=def456&apikey=g7&access_token=t0k"
        "&Signature=s1g&password=pw&x-api-key=h8#frag' and GET /b?token=zz HTTP/1.1"
    )
    out = redact(text)
    for value in ("abc123", "def456", "g7", "t0k", "s1g", "=pw", "h8", "zz"):
        assert value not in out
    assert "lat=34.5" in out and "key=***" in out and "#frag" in out


def test_redact_removes_known_secrets_anywhere_in_any_encoding() -> None:
    secret = "a b/c+d"
    text = f"/{secret}/ then a%20b%2Fc%2Bd then a+b%2Fc%2Bd; Authorization: Bearer xyz.abc"
    out = redact(text, [secret, ""])
    assert secret not in out and "a%20b%2Fc%2Bd" not in out and "a+b%2Fc%2Bd" not in out
    assert "xyz.abc" not in out


def test_printable_escapes_what_could_forge_or_reorder_a_log_line() -> None:
    text = "a\r\nERROR forged\tx\x00\x1b[31m\x85\u202eevil\u2066\u2069\u2028 سکه\u200cها"
    out = printable(text)
    assert out == ("a\\r\\nERROR forged\\tx\\x00\\x1b[31m\\x85\\u202eevil\\u2066\\u2069\\u2028 سکه\u200cها")


def test_printable_truncates_without_splitting_an_escape() -> None:
    assert printable("x" * 500, limit=10) == "x" * 10 + "…"
    assert printable("abcdefgh\n", limit=9) == "abcdefgh…"


# -- the client against garbage ------------------------------------------------------------


async def test_garbage_from_upstream_never_puts_the_key_in_the_error(client, raw) -> None:
    session = client.session(timeout_seconds=30, pool="brsapi", secrets=[KEY])
    with pytest.raises(UpstreamError) as caught:
        await session.get_json(raw.url("/Api/Market/Gold_Currency.php"), params={"key": KEY})
    assert raw.request_lines and KEY.encode() in raw.request_lines[0]  # the key did go out
    text = str(caught.value)
    assert_secret_free(text)
    assert "127.0.0.1" in text  # still says which upstream failed
    assert "\n" not in text and "\r" not in text
    assert KEY.encode() not in caught.value.body


async def test_a_key_param_is_redacted_even_when_the_caller_named_no_secret(client, raw) -> None:
    with pytest.raises(UpstreamError) as caught:
        await client.session(timeout_seconds=30).get(raw.url("/latest/"), params={"api_key": KEY})
    assert_secret_free(str(caught.value))


@pytest.mark.parametrize("provider", [BrsApiProvider, NavasanProvider])
async def test_keyed_providers_fail_without_showing_their_key(provider, raw) -> None:
    with pytest.raises(UpstreamError) as caught:
        await fetch_once(provider, raw, api_key=KEY)  # type: ignore[arg-type]
    assert_secret_free(str(caught.value))


async def test_an_error_body_echoing_the_key_is_blanked(client, upstream: FakeUpstream) -> None:
    upstream.fail("/Api/Market/Gold_Currency.php", 403, body=f"invalid key {KEY}\nrequest: ?key={KEY}")
    session = client.session(timeout_seconds=30, secrets=[KEY])
    with pytest.raises(UpstreamError) as caught:
        await session.get(upstream.url("/Api/Market/Gold_Currency.php"), params={"key": KEY})
    assert caught.value.status == 403
    assert KEY.encode() not in caught.value.body
    assert_secret_free(str(caught.value))


# -- end to end: the service ----------------------------------------------------------------


def brsapi_settings(url: str) -> Settings:
    others = {spec.name: {"enabled": False} for spec in BUILTIN_WIDGETS if spec.name != "prices"}
    return Settings(
        engine=EngineSettings(background=False, retry_base_seconds=0.05, cold_wait_seconds=5),
        widgets={"prices": {"providers": ["brsapi"], "refresh_seconds": 60}, **others},
        providers={"brsapi": {"url": url, "api_key": KEY, "timeout_seconds": 30}},
    )


async def test_the_key_reaches_no_response_and_no_log_line(aiohttp_client, raw, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = await aiohttp_client(create_app(brsapi_settings(raw.url(""))))

    widget = await client.get("/widgets/prices.json")
    widget_body = await widget.text()
    health = await client.get("/health")
    health_body = await health.text()
    fragment_body = await (await client.get("/widgets/prices.html")).text()

    assert raw.request_lines, "the upstream was never asked"
    assert widget.status == 503 and "127.0.0.1" in (await widget.json())["error"]
    assert "brsapi" in (await health.json())["checks"]["prices:dataAge"][0]["output"]
    for body in (widget_body, health_body, fragment_body):
        assert_secret_free(body)
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert_secret_free(logged)
    failing = [r for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert failing, "the failure was not logged"
    for record in failing:  # one record, one line: upstream text cannot start another
        assert "\n" not in record.getMessage() and "\r" not in record.getMessage()


async def test_stored_validators_carry_no_key(aiohttp_client, upstream: FakeUpstream) -> None:
    text = fixture_text("brsapi_gold_currency.json")

    async def answer(request):
        return web.Response(text=text, content_type="application/json", headers={"ETag": '"v1"'})

    upstream.on("/Api/Market/Gold_Currency.php", answer)
    client = await aiohttp_client(create_app(brsapi_settings(upstream.url("")), clock=FakeClock()))

    assert (await client.get("/widgets/prices.json")).status == 200

    stored = client.app[ENGINE].store.local("prices")
    assert stored is not None and stored.validators, "the ETag was not kept"
    assert_secret_free(stored.to_bytes().decode())
