"""Functions for parsing-process tests: module-level, so a spawned worker can import them."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path


def worker_pid() -> int:
    return os.getpid()


def crash() -> None:
    # What a worker killed for its memory or crashing in a C extension looks like to the pool.
    os._exit(70)


def wait_in_worker(started: str, seconds: float) -> int:
    """Say (by creating ``started``) that the worker is busy, then stay busy."""
    Path(started).touch()
    time.sleep(seconds)
    return os.getpid()


def warn(text: str) -> int:
    logging.getLogger("tests.parse_workers").warning("from the worker: %s", text)
    return os.getpid()


def warn_and_fail(text: str) -> None:
    logging.getLogger("tests.parse_workers").warning("before failing: %s", text)
    raise ValueError(text)
