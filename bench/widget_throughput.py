"""Cached widget throughput against a bare aiohttp app serving the same bytes, in one run.

    python bench/widget_throughput.py [--duration 10] [--connections 64] [--client wrk|aiohttp]

Both servers run as separate processes (one worker each), started the same way; the load comes
from the same client (wrk when installed, else an aiohttp client in this process). Prints
requests/s for each and the ratio ours / bare. Goal: >= 0.9 for JSON and HTML.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def load_with_wrk(url: str, duration: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(match.group(1))


def load_with_aiohttp(url: str, duration: int, connections: int) -> float:
    async def run() -> float:
        done = 0
        deadline = time.monotonic() + duration
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    async with session.get(url) as response:
                        await response.read()
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(connections)))
            return done / (time.monotonic() - started)

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternate ours/bare this many times")
    parser.add_argument(
        "--client", choices=["wrk", "aiohttp"], default="wrk" if shutil.which("wrk") else "aiohttp"
    )
    args = parser.parse_args()
    load = load_with_wrk if args.client == "wrk" else load_with_aiohttp

    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDEBAR_")}
    env["SIDEBAR_LOG_LEVEL"] = "WARNING"
    for widget in ("PRICES", "WEATHER", "SATELLITE"):  # measure serving, not upstreams
        env[f"SIDEBAR_WIDGETS__{widget}__ENABLED"] = "false"
    ours_port = free_port()
    ours = start(
        [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(ours_port)], env
    )
    servers = [ours]
    try:
        base = f"http://127.0.0.1:{ours_port}"
        wait_until_up(f"{base}/widgets/links.json")
        print(
            f"client: {args.client}, {args.connections} connections, {args.duration}s x {args.rounds} rounds"
        )
        for kind, content_type in (
            ("json", "application/json; charset=utf-8"),
            ("html", "text/html; charset=utf-8"),
        ):
            url = f"{base}/widgets/links.{kind}"
            import urllib.request

            with urllib.request.urlopen(url) as response:
                body = response.read()
            body_file = Path(tempfile.mkstemp(suffix=f".{kind}")[1])
            body_file.write_bytes(body)
            bare_port = free_port()
            bare = start(
                [
                    sys.executable,
                    str(HERE / "bare_app.py"),
                    "--port",
                    str(bare_port),
                    "--body",
                    str(body_file),
                    "--content-type",
                    content_type,
                ]
            )
            servers.append(bare)
            wait_until_up(f"http://127.0.0.1:{bare_port}/")
            ours_rates, bare_rates = [], []
            for _ in range(args.rounds):
                bare_rates.append(
                    load(
                        f"http://127.0.0.1:{bare_port}/widgets/links.{kind}", args.duration, args.connections
                    )
                )
                ours_rates.append(load(url, args.duration, args.connections))
            ours_rps, bare_rps = max(ours_rates), max(bare_rates)
            ratio = ours_rps / bare_rps
            print(
                f"{kind:4}  ours {ours_rps:9.0f} req/s   bare {bare_rps:9.0f} req/s"
                f"   ratio {ratio:.2f}   ({len(body)} bytes)"
            )
            bare.terminate()
            body_file.unlink()
    finally:
        for server in servers:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
