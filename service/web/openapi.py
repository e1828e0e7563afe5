"""``/openapi.json``: the JSON API as an OpenAPI 3.1 document, made from the widgets' own models.

Each enabled widget's ``data`` schema is its pydantic data model's JSON Schema (the model every
snapshot is validated with before it is stored), so the document cannot drift from what the
service serves. The envelope, errors, the list and the
price history are described here once. Built when the app is made (the enabled widgets are known
then) and served as bytes.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.web.errors import endpoint
from service.web.http_caching import NO_STORE
from service.web.keys import OPENAPI
from service.widget_config import ConfiguredWidget

routes = web.RouteTableDef()

REF = "#/components/schemas/{model}"

#: Each widget's query parameters on both formats: (name, description, schema).
WIDGET_QUERY: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "prices": [
        ("items", "Comma-separated item keys, a subset of the configured ones.", {"type": "string"}),
        ("unit", "Rial or toman for prices in Rial.", {"enum": ["toman", "rial"]}),
        ("columns", "Columns of the fragment, comma-separated; empty: the price alone.", {"type": "string"}),
        ("chart", "A 24-hour line beside each price (fragment).", {"enum": ["none", "sparkline"]}),
        ("layout", "A table, or one scrolling line (fragment).", {"enum": ["table", "ticker"]}),
    ],
    "weather": [("days", "Days of forecast shown.", {"type": "integer", "minimum": 1, "maximum": 7})],
    "air": [
        (
            "forecast_hours",
            "Hours ahead shown, in three-hour blocks (the worst index of each); 0 for the index now alone.",
            {"type": "integer", "minimum": 0, "maximum": 24, "multipleOf": 3},
        )
    ],
    "prayer": [
        (
            "date",
            "A Gregorian (2024-11-27) or Jalali (1403-09-07) day from 1925 to 2099.",
            {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        ),
        ("days", "Days shown from that day on.", {"type": "integer", "minimum": 1, "maximum": 7}),
    ],
}
FRAGMENT_QUERY = [
    ("theme", "Colours of the fragment.", {"enum": ["light", "dark", "auto"]}),
    ("heading", "Heading level of the fragment's title.", {"enum": ["2", "3", "4"]}),
]


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _envelope(name: str, data_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["widget", "status", "source", "fetched_at", "attribution", "data"],
        "properties": {
            "widget": {"const": name},
            "status": {
                "enum": ["fresh", "stale"],
                "description": "stale: the refresh interval has passed; a refresh is running or backing off.",
            },
            "source": {"type": "string", "description": "The provider whose data this is."},
            "fetched_at": {
                "type": "string",
                "format": "date-time",
                "description": "When the data was fetched (UTC); its age is now minus this.",
            },
            "attribution": {"type": ["string", "null"]},
            "data": {"$ref": data_ref},
        },
    }


def _parameters(items: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
        for name, text, schema in items
    ]


STATIC_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "A short reason, never a trace."}},
    },
    "WidgetList": {
        "type": "object",
        "required": ["widgets"],
        "properties": {
            "widgets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "title", "json", "html", "refresh_seconds"],
                    "properties": {
                        "name": {"type": "string"},
                        "title": {"type": "string"},
                        "json": {"type": "string"},
                        "html": {"type": "string"},
                        "refresh_seconds": {"type": "number"},
                    },
                },
            }
        },
    },
    "PriceHistory": {
        "type": "object",
        "required": ["item", "title", "unit", "range", "resolution", "from", "to", "points"],
        "properties": {
            "item": {"type": "string"},
            "title": {"type": "string"},
            "unit": {"enum": ["IRR", "USD"]},
            "range": {"enum": ["1d", "7d", "30d", "1y"]},
            "resolution": {"type": "string"},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "points": {
                "type": "array",
                "description": "[time, price] pairs, oldest first.",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string", "format": "date-time"}, {"type": "number"}],
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
            "first": {"type": ["number", "null"]},
            "last": {"type": ["number", "null"]},
            "min": {"type": ["number", "null"]},
            "max": {"type": ["number", "null"]},
        },
    },
}


def build_document(widgets: dict[str, ConfiguredWidget]) -> dict[str, Any]:
    """The OpenAPI document for the enabled ``widgets``."""
    enabled = [w for w in widgets.values() if w.enabled]
    models: list[tuple[type[BaseModel], Any]] = [(w.spec.data_model, "validation") for w in enabled]
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = {**defs.get("$defs", {}), **STATIC_SCHEMAS}
    paths: dict[str, Any] = {
        "/widgets": {
            "get": {
                "summary": "The enabled widgets",
                "operationId": "listWidgets",
                "responses": {
                    "200": {
                        "description": "Their names, titles and URLs.",
                        "content": {"application/json": {"schema": {"$ref": REF.format(model="WidgetList")}}},
                    }
                },
            }
        }
    }
    for widget in enabled:
        envelope = f"{widget.spec.data_model.__name__}Envelope"
        schemas[envelope] = _envelope(widget.name, refs[(widget.spec.data_model, "validation")]["$ref"])
        query = WIDGET_QUERY.get(widget.name, [])
        paths[f"/widgets/{widget.name}.json"] = {
            "get": {
                "summary": f"{widget.spec.title} ({widget.name}): the data, with its freshness",
                "operationId": f"get_{widget.name}",
                "parameters": _parameters(query),
                "responses": {
                    "200": {
                        "description": (
                            "The data, fresh or stale. Carries ETag, Last-Modified and Cache-Control "
                            "(max-age until the next refresh)."
                        ),
                        "content": {"application/json": {"schema": {"$ref": REF.format(model=envelope)}}},
                    },
                    "304": {"description": "Unchanged since the ETag or date the client sent."},
                    "400": _error("A bad query parameter."),
                    "503": _error("The widget never had data yet."),
                },
            }
        }
        paths[f"/widgets/{widget.name}.html"] = {
            "get": {
                "summary": f"{widget.spec.title} ({widget.name}): a right-to-left Persian HTML fragment",
                "operationId": f"get_{widget.name}_html",
                "parameters": _parameters(query + FRAGMENT_QUERY),
                "responses": {
                    "200": {
                        "description": "A self-contained fragment; a polite placeholder without data.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "Unchanged."},
                    "400": _error("A bad query parameter."),
                },
            }
        }
    if any(w.name == "prices" for w in enabled):
        paths["/widgets/prices/history.json"] = {
            "get": {
                "summary": "One price item's recorded history",
                "operationId": "get_price_history",
                "parameters": _parameters(
                    [
                        ("item", "An item key of the prices widget.", {"type": "string"}),
                        ("range", "How far back.", {"enum": ["1d", "7d", "30d", "1y"]}),
                    ]
                ),
                "responses": {
                    "200": {
                        "description": "Points in the item's unit, with first, last, min and max.",
                        "content": {
                            "application/json": {"schema": {"$ref": REF.format(model="PriceHistory")}}
                        },
                    },
                    "304": {"description": "Unchanged."},
                    "400": _error("An unknown item or range."),
                    "503": _error("No history yet, or its store is unreachable."),
                },
            }
        }
    for path in ("/livez", "/readyz"):
        paths[path] = {
            "get": {
                "summary": "Alive" if path == "/livez" else "Ready to serve",
                "operationId": path.strip("/"),
                "responses": {"200": {"description": "Yes."}, "503": {"description": "No."}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sidebar-widgets",
            "version": _version(),
            "description": (
                "Live Persian data boxes for a news site's sidebar, as JSON envelopes and HTML "
                'fragments. Every error is application/json {"error": "…"}.'
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _version() -> str:
    try:
        return version("sidebar-widgets")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


def document_bytes(widgets: dict[str, ConfiguredWidget]) -> bytes:
    return json.dumps(build_document(widgets), ensure_ascii=False, separators=(",", ":")).encode()


@routes.get("/openapi.json")
@endpoint("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[OPENAPI],
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": NO_STORE, "Access-Control-Allow-Origin": "*"},
    )
