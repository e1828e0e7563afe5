"""The web face: the aiohttp app, widget routes, embedding pages, probes, errors and HTTP caching."""
