"""``sidebar-widgets serve`` runs the service; ``sidebar-widgets fetch WIDGET`` tries one upstream chain."""

from __future__ import annotations

import argparse
import asyncio
import errno
import functools
import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection

from aiohttp import web

from providers.http import NotModified, UpstreamClient, UpstreamError
from providers.redaction import printable, redact
from service.engine.clock import SystemClock
from service.listening import ListenError, check_can_listen
from service.logs import ACCESS_LOGGER, AccessLogger, configure_logging
from service.metrics import share_between_processes
from service.registry import default_registry
from service.settings import MAX_WORKERS, ConfigError, Settings, load_settings
from service.widget_config import configure_widgets
from service.workers import LISTENING, supervise

EXIT_CONFIG = 2
#: The address cannot be listened on (a port in use): not a configuration mistake, often another
#: copy still running, and what a supervisor's restart with back-off can outwait.
EXIT_LISTEN = 1
# --help shows these plain words, not the module's docstring (its markup would show as is).
DESCRIPTION = (
    "Live Persian sidebar widgets "
    "(prices, weather, air quality, satellite, prayer times, date, links, news)."
)
EPILOG = "Configuration: SIDEBAR_* environment variables, or a TOML file named by SIDEBAR_CONFIG."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sidebar-widgets", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"sidebar-widgets {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP service", description="Run the HTTP service.")
    serve.add_argument("--host", help="listen address (default from SIDEBAR_HOST, else 0.0.0.0)")
    serve.add_argument("--port", type=_port, help="listen port (default from SIDEBAR_PORT, else 8080)")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="serving processes on the port (default from SIDEBAR_WORKERS, else 1)",
    )
    names = ", ".join(sorted(default_registry().widgets))
    fetch = commands.add_parser(
        "fetch",
        help="run a widget's provider chain once and print its JSON",
        description="Run a widget's provider chain once and print the validated data as JSON.",
    )
    fetch.add_argument("widget", help=f"the widget's name: {names}")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG

    try:
        settings = load_settings()
        if args.command == "fetch":
            return asyncio.run(_fetch(settings, args.widget))
        return _serve(
            settings,
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
    except ConfigError as exc:
        print(f"sidebar-widgets: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ListenError as exc:
        print(f"sidebar-widgets: {exc}", file=sys.stderr)
        return EXIT_LISTEN


def _version() -> str:
    """The installed package's version: the one place it is written is pyproject.toml."""
    try:
        return version("sidebar-widgets")
    except PackageNotFoundError:  # a source tree run without ``pip install -e .``
        return "(not installed)"


def _port(text: str) -> int:
    """A listen port, checked as ``SIDEBAR_PORT`` is: out of range is a usage error, not a traceback
    from the socket (nor, for 0, a silent fall back to the configured port)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return port


def _workers(text: str) -> int:
    """A worker count, bounded as ``SIDEBAR_WORKERS`` is: ``--workers 100000`` would otherwise fork
    that many processes before anything else could refuse it."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a worker count from 1 to {MAX_WORKERS}")
    return count


def _serve(settings: Settings, *, host: str | None, port: int | None, workers: int | None) -> int:
    count = workers or settings.workers
    if count > 1 and settings.redis_url is None:
        raise ConfigError(
            f"workers: {count} workers need redis_url "
            "(separate in-memory caches would multiply upstream fetches)"
        )
    if settings.event_loop == "uvloop" and not _uvloop_installed():
        raise ConfigError("event_loop: uvloop is not installed (pip install 'sidebar-widgets[speed]')")
    from service.web.app import create_app

    # Every widget's configuration is checked here, once, before anything is logged or forked:
    # in the workers the same mistake would be a traceback from each and exit status 1. With
    # several workers this app is only that check; each worker builds its own.
    app = create_app(settings)
    address = (host or settings.host, port or settings.port)
    check_can_listen(*address)
    configure_logging(settings.log_level, settings.log_format)
    if count == 1:
        _run_worker(settings, address, reuse_port=False, app=app)
        return 0
    del app
    logging.getLogger("service").info("starting %d workers on %s:%d", count, *address)
    # The workers' metrics, summed by whichever answers a scrape; gone with the service.
    with tempfile.TemporaryDirectory(prefix="sidebar-widgets-metrics-") as metrics_dir:
        return supervise(
            count,
            functools.partial(_worker_main, address, metrics_dir),
            grace_seconds=settings.shutdown_grace_seconds,
        )


def _worker_main(address: tuple[str, int], metrics_dir: str, index: int, listening: Connection) -> None:
    """A worker process: settings read again from the same environment and file as the parent's."""
    share_between_processes(metrics_dir)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        _run_worker(settings, address, reuse_port=True, on_listening=lambda: listening.send_bytes(LISTENING))
    except (ConfigError, ListenError) as exc:
        # The parent checked both before forking, so only a change since (the file edited, the
        # port taken in between) gets here: one line, through logging so a JSON log stays JSON;
        # the parent then stops the service.
        logging.getLogger("service").error("worker %d: %s", index, exc)
        raise SystemExit(EXIT_LISTEN if isinstance(exc, ListenError) else EXIT_CONFIG) from None


def _run_worker(
    settings: Settings,
    address: tuple[str, int],
    *,
    reuse_port: bool,
    on_listening: Callable[[], None] = lambda: None,
    app: web.Application | None = None,
) -> None:
    from service.web.app import create_app

    listening = False

    def announce(line: str) -> None:
        # run_app prints its banner once, right after every site is listening.
        nonlocal listening
        listening = True
        on_listening()
        logging.getLogger("service").info(line.strip())

    loop = _new_event_loop(settings.event_loop)
    if app is None:
        app = create_app(settings)
    try:
        web.run_app(
            app,
            host=address[0],
            port=address[1],
            reuse_port=reuse_port or None,
            loop=loop,
            access_log=logging.getLogger(ACCESS_LOGGER) if settings.access_log else None,
            access_log_class=AccessLogger,
            # SIGTERM: stop listening, run on_shutdown (/readyz turns 503), let requests in flight
            # finish for up to this long, then clean up and return (exit status 0).
            shutdown_timeout=settings.shutdown_grace_seconds,
            print=announce,
        )
    except OSError as exc:
        # The port taken between check_can_listen and this bind: the same one line, not a
        # traceback. Anything else, or once listening, is a real fault and keeps its traceback.
        if listening or exc.errno != errno.EADDRINUSE:
            raise
        # The loop's own wording repeats the address; the system's is what check_can_listen says.
        reason = os.strerror(exc.errno)
        raise ListenError(f"cannot listen on {address[0]}:{address[1]}: {reason}") from None


def _uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def _new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    if choice != "asyncio" and _uvloop_installed():
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    logging.getLogger("service").info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
    return loop


async def _fetch(settings: Settings, name: str) -> int:
    widgets = configure_widgets(settings, default_registry())
    widget = widgets.get(name)
    if widget is None:
        raise ConfigError(f"unknown widget {name!r} (known: {', '.join(sorted(widgets))})")
    if not widget.providers:
        raise ConfigError(f"widget {name!r} has no usable provider")
    client = UpstreamClient(settings.http, SystemClock().time)
    await client.start()
    errors: list[str] = []
    try:
        for provider in widget.providers:
            session = client.session(
                timeout_seconds=provider.config.timeout_seconds,
                user_agent=provider.config.user_agent,
                pool=provider.id,
                secrets=(provider.config.api_key or "",),
            )
            try:
                model = await provider.fetch(session)
                data = widget.spec.data_model.model_validate(model.model_dump(mode="json"))
            except (UpstreamError, NotModified, Exception) as exc:
                reason = getattr(exc, "reason", type(exc).__name__)
                # Upstream-made text on a terminal: no key, no control characters.
                secrets = (provider.config.api_key or "",)
                errors.append(printable(redact(f"{provider.id}: {reason}: {exc}", secrets)))
                continue
            doc = {"widget": name, "source": provider.id, "data": data.model_dump(mode="json")}
            print(json.dumps(doc, ensure_ascii=False, indent=2))
            return 0
    finally:
        await client.close()
    print(f"sidebar-widgets: {name}: every provider failed: {' | '.join(errors)}", file=sys.stderr)
    return 1
