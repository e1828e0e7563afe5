"""Typed application keys (aiohttp ``web.AppKey``) shared by the app and its routes."""

from __future__ import annotations

from aiohttp import web

from service.engine.engine import Engine
from service.metrics import Metrics
from service.settings import Settings
from service.web.cors import EmbedPolicy
from service.web.representations import Representations
from service.widget_config import ConfiguredWidget

SETTINGS = web.AppKey("settings", Settings)
WIDGETS = web.AppKey("widgets", dict[str, ConfiguredWidget])
ENGINE = web.AppKey("engine", Engine)
METRICS = web.AppKey("metrics", Metrics)
REPRESENTATIONS = web.AppKey("representations", Representations)
EMBED = web.AppKey("embed", EmbedPolicy)
