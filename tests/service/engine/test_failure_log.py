"""The log line for a failing widget says what readers see meanwhile."""

from __future__ import annotations

import logging

from service.web.app import create_app
from service.web.keys import ENGINE


def failing_lines(caplog) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("widget probe failing")]
    caplog.clear()
    return lines


async def test_keeping_last_good_data_is_logged_only_when_there_is_some(
    aiohttp_client, upstream, probe_settings, caplog
):
    caplog.set_level(logging.WARNING)
    upstream.fail("/probe", 502)
    client = await aiohttp_client(create_app(probe_settings(retry_base_seconds=0.01)))
    refresher = client.app[ENGINE].refreshers["probe"]

    await refresher.trigger(force=True)
    never_had_data = failing_lines(caplog)
    upstream.json("/probe", {"value": 1, "label": "یک"})
    await refresher.trigger(force=True)
    upstream.fail("/probe", 502)
    await refresher.trigger(force=True)
    had_data = failing_lines(caplog)

    assert len(never_had_data) == 1 and "no data yet" in never_had_data[0]
    assert "keeping last good data" not in never_had_data[0]
    assert len(had_data) == 1 and "keeping last good data" in had_data[0]
