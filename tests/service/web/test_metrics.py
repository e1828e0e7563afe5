"""/metrics in the Prometheus text format, with the series operators alert on."""

from __future__ import annotations

import re

from service.web.app import create_app


async def test_metrics_cover_fetches_errors_lookups_age_and_requests(
    aiohttp_client, upstream, probe_settings
):
    upstream.json("/probe", {"value": 1, "label": "x"})
    client = await aiohttp_client(create_app(probe_settings()))
    await client.get("/widgets/probe.json")
    await client.get("/widgets/probe.json")
    await client.get("/widgets/nope.json")

    response = await client.get("/metrics")
    text = await response.text()

    assert response.content_type == "text/plain"
    assert 'sidebar_upstream_fetch_duration_seconds_count{provider="probe"} 1.0' in text
    assert re.search(r'sidebar_widget_data_age_seconds\{widget="probe"\} \d', text)
    assert 'sidebar_cache_lookups_total{result="local"}' in text
    assert 'sidebar_cache_lookups_total{result="miss"} 1.0' in text
    assert 'sidebar_http_requests_total{route="/widgets/{name}.json",status="200"} 2.0' in text
    assert 'sidebar_http_requests_total{route="/widgets/{name}.json",status="404"} 1.0' in text


async def test_upstream_errors_are_counted_by_provider_and_reason(aiohttp_client, upstream, probe_settings):
    upstream.fail("/probe", 500)
    client = await aiohttp_client(create_app(probe_settings()))
    await client.get("/widgets/probe.json")
    text = await (await client.get("/metrics")).text()
    assert 'sidebar_upstream_errors_total{provider="probe",reason="status"} 1.0' in text


async def test_metrics_declare_the_exposition_format_version(aiohttp_client, upstream, probe_settings):
    client = await aiohttp_client(create_app(probe_settings()))

    plain = await client.get("/metrics")
    openmetrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert plain.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert (await openmetrics.text()).endswith("# EOF\n")
