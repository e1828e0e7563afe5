"""Shared by the benchmarks: start servers as processes, load them with one client, compare."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def fetch(url: str) -> bytes:
    return fetch_with_headers(url)[0]


#: Headers every aiohttp answer has anyway (the bare app sends its own).
_TRANSPORT_HEADERS = {"date", "server", "content-length", "connection", "keep-alive"}


def fetch_with_headers(url: str) -> tuple[bytes, dict[str, str]]:
    """The body and the headers a baseline must send too (all but what aiohttp adds itself)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _TRANSPORT_HEADERS}
        return bytes(response.read()), headers


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def service_env(**settings: str) -> dict[str, str]:
    """The environment of a benchmarked service: only what the benchmark sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    env["SIDEBAR_LOG_LEVEL"] = "WARNING"
    env.update(settings)
    return env


def start_service(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return start([sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(port)], env)


def start_bare(
    port: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """The baseline: a bare aiohttp app returning ``body`` (with ``headers``) for every path."""
    body_file = Path(tempfile.mkstemp()[1])
    body_file.write_bytes(body)
    command = [
        sys.executable,
        str(HERE / "bare_app.py"),
        "--port",
        str(port),
        "--body",
        str(body_file),
        "--content-type",
        content_type,
    ]
    if headers:
        headers_file = body_file.with_suffix(".headers.json")
        headers_file.write_text(json.dumps(headers))
        command += ["--headers", str(headers_file)]
    process = start(command)
    wait_until_up(f"http://127.0.0.1:{port}/")
    return process, body_file


def default_client() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


#: wrk's threads. One: on a two-core machine the server under test keeps a core to itself.
WRK_THREADS = 1


def load(client: str, url: str, duration: int, connections: int, threads: int = WRK_THREADS) -> float:
    """Requests per second ``client`` gets from ``url``."""
    return load_counted(client, url, duration, connections, threads)[0]


def load_counted(
    client: str, url: str, duration: int, connections: int, threads: int = WRK_THREADS
) -> tuple[float, int]:
    """Requests per second ``client`` gets from ``url``, and how many requests that was."""
    if client == "wrk":
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        if rate is None or total is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return float(rate.group(1)), int(total.group(1))
    return asyncio.run(_load_with_aiohttp(url, duration, connections))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load_with_aiohttp(url: str, duration: int, connections: int) -> tuple[float, int]:
    done = 0
    deadline = time.monotonic() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.get(url) as response:
                    await response.read()
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.monotonic() - started), done


@dataclass(frozen=True)
class Load:
    """How both servers are loaded, from the command line."""

    client: str
    duration: int
    connections: int
    rounds: int
    threads: int = WRK_THREADS

    def describe(self) -> str:
        threads = f" ({self.threads} thread{'s' * (self.threads > 1)})" if self.client == "wrk" else ""
        return (
            f"client: {self.client}{threads}, {self.connections} connections, "
            f"{self.duration}s x {self.rounds} rounds"
        )


def load_arguments(description: str | None) -> Load:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=["wrk", "aiohttp"], default=default_client())
    parser.add_argument("--threads", type=int, default=WRK_THREADS, help="wrk's threads")
    args = parser.parse_args()
    return Load(args.client, args.duration, args.connections, args.rounds, args.threads)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        process.wait()


@dataclass(frozen=True)
class Server:
    """A server under load: where to send requests and, when known, its process (for CPU time)."""

    url: str
    pid: int | None = None


def compare(
    label: str,
    ours: str | Server,
    bare: str | Server,
    how: Load,
    *,
    size: int,
    same_headers: Server | None = None,
) -> float:
    """Alternate the servers round by round, keep each one's best round, print them and the ratios.

    ``bare`` returns the same bytes; ``same_headers``, when given, also the same headers: the
    baseline the goal is set against (its ratio is returned). Two measures: requests/s (best
    round), and, when the processes are known, CPU time per request (best round), which another
    load on a shared machine disturbs much less than throughput.
    """
    servers = {"ours": ours, "bare": bare, **({"same-headers": same_headers} if same_headers else {})}
    found = {
        name: server if isinstance(server, Server) else Server(server) for name, server in servers.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in found}
    costs: dict[str, list[float]] = {name: [] for name in found}
    for _ in range(how.rounds):
        for name, server in found.items():
            before = cpu_seconds(server.pid) if server.pid else 0.0
            rate, requests = load_counted(how.client, server.url, how.duration, how.connections, how.threads)
            rates[name].append(rate)
            if server.pid and requests:
                costs[name].append((cpu_seconds(server.pid) - before) / requests * 1e6)
    best = {name: max(values) for name, values in rates.items()}
    print(f"{label} ({size} bytes)")
    for name in found:
        line = f"  {name:12} {best[name]:8.0f} req/s  rounds " + " ".join(f"{r:.0f}" for r in rates[name])
        if costs[name]:
            line += f"   CPU {min(costs[name]):6.1f} us/req  rounds " + " ".join(
                f"{c:.1f}" for c in costs[name]
            )
        print(line)
    ratios = {name: best["ours"] / best[name] for name in found if name != "ours"}
    print("  req/s ratio  " + "   ".join(f"to {name} {ratio:.2f}" for name, ratio in ratios.items()))
    if all(costs.values()):
        cpu = {name: min(costs[name]) / min(costs["ours"]) for name in found if name != "ours"}
        print("  CPU ratio    " + "   ".join(f"to {name} {ratio:.2f}" for name, ratio in cpu.items()))
    return ratios.get("same-headers", ratios["bare"])
