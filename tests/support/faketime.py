"""libfaketime for tests of a replica whose clock is off: Debian's ``faketime``, installed if missing."""

from __future__ import annotations

import glob

from tests.support.debian import apt_install

_LIBRARY_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"


def _library() -> str | None:
    found = sorted(glob.glob(_LIBRARY_GLOB))
    return found[0] if found else None


#: Programs the suite borrows, which keep the real clock under ``days_ahead_env`` (Redis refuses
#: to run under libfaketime; the browser and the validators gain nothing from it).
REAL_CLOCK_PROGRAMS = ("redis-server", "chromium", "java", "node", "nginx", "apt-get", "dpkg")


def _installed_library() -> str:
    library = _library()
    if library is None:
        apt_install("faketime")
        library = _library()
        if library is None:
            raise RuntimeError("apt-get install faketime finished but libfaketime is not there")
    return library


def faketime_env(offset: str) -> dict[str, str]:
    """Environment that runs a program ``offset`` (``+10m``) away from the real wall clock.

    Preloaded directly (not through the ``faketime`` wrapper) so signals reach the program itself.
    Only the wall clock moves: monotonic time stays real, as on a host whose clock was set wrong.
    """
    return {"LD_PRELOAD": _installed_library(), "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def days_ahead_env(days: int) -> dict[str, str]:
    """Environment that runs Python ``days`` days ahead of the calendar, for the suite itself.

    Monotonic time moves too (libfaketime's default): with it left real, Python's ``time.sleep``
    fails with EINVAL under Debian's libfaketime 0.9.10.
    """
    return {
        "LD_PRELOAD": _installed_library(),
        "FAKETIME": f"+{days}d",
        "FAKETIME_SKIP_CMDS": ",".join(REAL_CLOCK_PROGRAMS),
    }
