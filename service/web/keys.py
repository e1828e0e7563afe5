"""Typed application keys (aiohttp ``web.AppKey``) shared by the app and its routes."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from service.engine.engine import Engine
from service.metrics import Metrics
from service.settings import Settings
from service.web.cors import EmbedPolicy
from service.web.representations import Representations
from service.widget_config import ConfiguredWidget


@dataclass
class Readiness:
    """Whether this process can serve: set once start-up has finished, cleared when shutdown begins.

    Deliberately not tied to Redis: widgets are served from memory while it is down, and a
    shared dependency's outage must not take every replica out of the load balancer at once.
    """

    ready: bool = False
    #: Why the process is not ready, for /readyz ("starting", "shutting down").
    reason: str = "starting"


SETTINGS = web.AppKey("settings", Settings)
WIDGETS = web.AppKey("widgets", dict[str, ConfiguredWidget])
ENGINE = web.AppKey("engine", Engine)
METRICS = web.AppKey("metrics", Metrics)
REPRESENTATIONS = web.AppKey("representations", Representations)
EMBED = web.AppKey("embed", EmbedPolicy)
READINESS = web.AppKey("readiness", Readiness)
#: The OpenAPI document, made once from the enabled widgets' models.
OPENAPI = web.AppKey("openapi", bytes)
