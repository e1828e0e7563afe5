"""libfaketime for tests of a replica whose clock is off: Debian's ``faketime``, installed if missing."""

from __future__ import annotations

import glob

from tests.support.debian import apt_install

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
        apt_install("faketime")
        library = _library()
        if library is None:
            raise RuntimeError("apt-get install faketime finished but libfaketime is not there")
    return {"LD_PRELOAD": library, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
