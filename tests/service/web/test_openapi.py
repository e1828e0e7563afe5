"""/openapi.json describes the JSON API as the service serves it, for clients that poll prices."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.web.app import create_app
from tests.support.clock import FakeClock
from tests.support.fed_service import WIDGETS, fed_settings
from tests.support.weather import OPENMETEO_CAPTURED


@pytest.fixture
async def client(aiohttp_client, upstream):
    settings = fed_settings(upstream, now=OPENMETEO_CAPTURED)
    return await aiohttp_client(create_app(settings, clock=FakeClock(OPENMETEO_CAPTURED)))


def validator(document: dict[str, Any], schema: str) -> Draft202012Validator:
    """A validator for one of the document's schemas, its references resolved in the document."""
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema}", **document})


async def test_the_document_is_valid_openapi_and_lists_every_enabled_widget(client):
    response = await client.get("/openapi.json")
    document = await response.json()

    assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
    validate(document)
    for name in WIDGETS:
        assert f"/widgets/{name}.json" in document["paths"]
        assert f"/widgets/{name}.html" in document["paths"]
    assert "/widgets/prices/history.json" in document["paths"]


async def test_every_widget_answer_validates_against_its_schema(client):
    document = await (await client.get("/openapi.json")).json()

    for name in WIDGETS:
        body = await (await client.get(f"/widgets/{name}.json")).json()
        operation = document["paths"][f"/widgets/{name}.json"]["get"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        errors = list(validator(document, schema.rsplit("/", 1)[1]).iter_errors(body))
        assert errors == [], (name, [error.message for error in errors][:3])
    listed = await (await client.get("/widgets")).json()
    assert list(validator(document, "WidgetList").iter_errors(listed)) == []


async def test_the_schemas_can_fail(client):
    """A wrong answer is caught: the check above is not a check that passes anything."""
    document = await (await client.get("/openapi.json")).json()
    body = await (await client.get("/widgets/prices.json")).json()
    body["data"]["items"][0]["price"] = "a lot"
    body["status"] = "sleepy"

    messages = [error.message for error in validator(document, "PricesDataEnvelope").iter_errors(body)]

    assert any("sleepy" in message for message in messages)
    assert any("a lot" in message for message in messages)


async def test_an_error_answer_is_the_documented_error(client):
    document = await (await client.get("/openapi.json")).json()
    response = await client.get("/widgets/prices.json?items=nothing")

    assert response.status == 400
    assert "400" in document["paths"]["/widgets/prices.json"]["get"]["responses"]
    assert list(validator(document, "Error").iter_errors(await response.json())) == []
