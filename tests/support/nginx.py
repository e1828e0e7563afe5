"""nginx in front of service processes, with the deployment's own configuration.

Debian's ``nginx``, installed by the test setup when missing (like chromium). It runs unprivileged
from a temporary prefix; only the template's variables (upstream servers, listen address, cache
folder) are filled in for the test, everything else is ``deploy/nginx/`` as shipped.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.debian import program
from tests.support.redis_server import free_port

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "templates" / "default.conf.template"

#: Whom nginx runs as when the suite runs as root.
UNPRIVILEGED_USER = "nobody"


def nginx_executable() -> str:
    """Debian's nginx, installed with apt-get when absent; raises with the reason otherwise."""
    # RUNLEVEL=1: the package's install script must not start a system nginx on port 80.
    return program("nginx", path="/usr/sbin", env={"RUNLEVEL": "1"})


def render(template: str, values: dict[str, str]) -> str:
    """What the nginx image's entrypoint does: fill ``${NAME}`` for the names given, only those."""
    rendered = template
    for name, value in values.items():
        rendered = rendered.replace("${" + name + "}", value)
    left = re.findall(r"\$\{(SIDEBAR_[A-Z_]+)\}", rendered)
    if left:
        raise AssertionError(f"template variables not filled: {left}")
    return rendered


class Nginx:
    """The shipped configuration in front of ``replicas`` (ports on 127.0.0.1)."""

    def __init__(self, replicas: list[int], internal: str = "allow 127.0.0.1;") -> None:
        self.binary = nginx_executable()
        self.port = free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="sidebar-nginx-"))
        self.process: subprocess.Popen[bytes] | None = None
        servers = " ".join(f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in replicas)
        site = render(
            TEMPLATE.read_text(),
            {
                "SIDEBAR_UPSTREAM_SERVERS": servers,
                "SIDEBAR_RESOLVER": "127.0.0.1",
                "SIDEBAR_LISTEN": f"127.0.0.1:{self.port}",
                "SIDEBAR_CACHE_DIR": str(self.prefix / "cache"),
                "SIDEBAR_INTERNAL": internal,
            },
        )
        (self.prefix / "sidebar.conf").write_text(site)
        (self.prefix / "tmp").mkdir()
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.prefix}/tmp/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # The parts the nginx image's own nginx.conf provides, pointed into the prefix.
        (self.prefix / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 2;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {self.prefix}/access.log;
{temp_paths}
    include {self.prefix}/sidebar.conf;
}}
"""
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self, *args: str) -> list[str]:
        command = [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), *args]
        if os.geteuid() != 0:
            return command
        # As root, nginx would keep a root master; the whole of it runs as an ordinary user instead.
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        for path in [self.prefix, *self.prefix.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *command]

    def start(self) -> None:
        checked = subprocess.run(
            self._command("-t", "-e", str(self.prefix / "error.log")), capture_output=True
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused the configuration:\n{checked.stderr.decode()}")
        self.process = subprocess.Popen(
            self._command("-e", str(self.prefix / "error.log")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # generous: a busy machine starts programs slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on port {self.port}:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.prefix, ignore_errors=True)
