"""The Nu HTML Checker and axe-core for tests, installed by the test setup when missing.

Both come from the npm registry, pinned, into a cache outside the repository; the checker runs on
Debian's headless Java, and npm itself is Debian's. Nothing else is downloaded: ``vnu-jar``'s
install script (which would fetch a Java runtime) is not run. Anything that cannot be installed
raises with the reason, so a test that needs these tools fails rather than skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.debian import program
from tests.support.locking import exclusive

VNU_JAR = "vnu-jar"
AXE_CORE = "axe-core"
#: Pinned: a newer checker or rule set must not turn the suite red on its own.
VERSIONS = {VNU_JAR: "26.9.27", AXE_CORE: "4.14.1"}
#: axe-core's rule tags for WCAG 2.1 levels A and AA.
WCAG21AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sidebar-widgets-tests" / "npm"


def java_executable() -> str:
    """Debian's headless Java runtime, installed with apt-get when absent."""
    return program("java", "default-jre-headless")


def _installed_version(folder: Path, package: str) -> str | None:
    manifest = folder / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def npm_package(package: str) -> Path:
    """The pinned npm ``package``'s folder in the cache, installed from the registry if missing.

    The cache is one npm project listing every pinned package, installed together: installing
    one at a time would prune the others.
    """
    folder = cache_dir()
    if _installed_version(folder, package) != VERSIONS[package]:
        with exclusive(folder / ".lock"):
            if any(_installed_version(folder, name) != version for name, version in VERSIONS.items()):
                _npm_install(folder)
    return folder / "node_modules" / package


def _npm_install(folder: Path) -> None:
    npm = program("npm", "nodejs", "npm")
    manifest = {"name": "sidebar-widgets-test-tools", "private": True, "dependencies": VERSIONS}
    (folder / "package.json").write_text(json.dumps(manifest, indent=2))
    env = {**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"}
    result = subprocess.run(
        [npm, "install", "--no-audit", "--ignore-scripts", "--no-package-lock"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wrong = [name for name, version in VERSIONS.items() if _installed_version(folder, name) != version]
    if result.returncode != 0 or wrong:
        raise RuntimeError(
            f"npm install of {', '.join(wrong) or 'test tools'} failed: {result.stderr[-2000:]}"
        )


def axe_source() -> str:
    """axe-core's browser script, to inject into a page."""
    return (npm_package(AXE_CORE) / "axe.min.js").read_text()


@dataclass(frozen=True)
class Message:
    document: str
    kind: str  # "error", "warning" or "info"
    text: str
    extract: str

    def __str__(self) -> str:
        return f"{self.document}: {self.kind}: {self.text} [{self.extract.strip()}]"


def check_html(documents: Mapping[str, str]) -> list[Message]:
    """The Nu HTML Checker's messages on ``documents`` (name → HTML), all in one run of it.

    One run: the checker is a Java program whose start costs seconds.
    """
    java = java_executable()
    jar = npm_package(VNU_JAR) / "build" / "dist" / "vnu.jar"
    with tempfile.TemporaryDirectory(prefix="vnu-") as folder:
        names: dict[str, str] = {}
        for index, (name, html) in enumerate(documents.items()):
            path = Path(folder) / f"{index:03d}.html"
            path.write_text(html, encoding="utf-8")
            names[path.name] = name
        command = [
            java,
            "-jar",
            str(jar),
            "--format",
            "json",
            "--exit-zero-always",
            *sorted(Path(folder).glob("*.html")),
        ]
        result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(result.stderr)
    except ValueError:
        raise RuntimeError(f"the Nu HTML Checker gave no report: {result.stderr[-2000:]}") from None
    messages = []
    for message in report["messages"]:
        # The checker says "info" with subType "warning" for warnings, "error" for errors.
        kind = message.get("subType", "info") if message["type"] == "info" else message["type"]
        url = message.get("url", "?")
        document = names.get(url.rsplit("/", 1)[-1], url)
        messages.append(Message(document, kind, message.get("message", ""), message.get("extract", "")))
    return messages
