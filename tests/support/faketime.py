"""libfaketime for tests of a replica whose clock is off: Debian's ``faketime``, installed if missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

_LIBRARY_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"


def _library() -> str | None:
    found = sorted(glob.glob(_LIBRARY_GLOB))
    return found[0] if found else None


def faketime_env(offset: str) -> dict[str, str]:
    """Environment that runs a program ``offset`` (``+10m``) away from the real wall clock.

    Preloaded directly (not through the ``faketime`` wrapper) so signals reach the program itself.
    Only the wall clock moves: monotonic time stays real, as on a host whose clock was set wrong.
    """
    library = _library()
    if library is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            raise RuntimeError("no libfaketime, and apt-get (as root) is not available to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "faketime"], check=True, env=env, capture_output=True
        )
        library = _library()
        if library is None:
            raise RuntimeError("apt-get install faketime finished but libfaketime is not there")
    return {"LD_PRELOAD": library, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
