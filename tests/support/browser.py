"""A real Chromium for browser tests: Debian's package, installed by the test setup if missing.

Never a browser downloader: Playwright drives the system Chromium through ``executable_path``.
"""

from __future__ import annotations

import shutil

from tests.support.debian import program

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, Chromium keeps trying to reach Google's hosts on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """Debian's chromium, installed with apt-get when absent; raises with the reason otherwise."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or program("chromium")
