"""Tools the suite borrows from Debian (chromium, faketime, nginx, Java, npm), installed on demand.

A missing tool is installed with apt-get when the suite runs as root; otherwise the test that
needs it fails with the reason. It is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.locking import exclusive

#: Test workers install one at a time; apt's own locks only cover part of an install.
APT_LOCK = Path(tempfile.gettempdir()) / "sidebar-widgets-tests-apt.lock"


def apt_install(*packages: str, env: dict[str, str] | None = None) -> None:
    """``apt-get install`` the packages, or raise saying why that is not possible."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(
            f"{' '.join(packages)} missing, and apt-get (as root) is not available to install it"
        )
    # A lock timeout: another test run on this machine may be installing at the same moment.
    full_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    with exclusive(APT_LOCK):
        for command in ([*apt, "update", "-qq"], [*apt, "install", "-y", "-qq", *packages]):
            done = subprocess.run(command, env=full_env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")


def program(name: str, *packages: str, path: str | None = None, env: dict[str, str] | None = None) -> str:
    """The program on PATH (or on ``path``), installing its Debian packages first when it is absent."""
    found = shutil.which(name) or (shutil.which(name, path=path) if path else None)
    if found:
        return found
    apt_install(*(packages or (name,)), env=env)
    found = shutil.which(name) or (shutil.which(name, path=path) if path else None)
    if not found:
        raise RuntimeError(
            f"apt-get install {' '.join(packages or (name,))} finished but {name} is not there"
        )
    return found
