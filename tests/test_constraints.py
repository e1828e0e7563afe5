"""constraints.txt pins every dependency the project declares, at versions its ranges allow."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [req for group in project["optional-dependencies"].values() for req in group]
    return [Requirement(req) for req in [*project["dependencies"], *extras]]


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = pinned()
    problems = [
        f"{req}: pinned {pins.get(canonicalize_name(req.name))}"
        for req in declared()
        if canonicalize_name(req.name) not in pins
        or not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)
    ]
    assert problems == []


def test_the_image_installs_with_the_constraints() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml README.md constraints.txt ./" in dockerfile
    assert "pip install --no-cache-dir -c constraints.txt '.[speed]'" in dockerfile


def readme_command(marker: str) -> str:
    """The README's indented command line that runs ``marker``."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return next(line.strip() for line in lines if line.startswith("    python3 -m venv") and marker in line)


def test_the_readme_commands_and_ci_install_with_the_constraints() -> None:
    for marker in ("sidebar-widgets serve", "python -m pytest"):
        assert " -c constraints.txt " in readme_command(marker), marker
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_command("python -m pytest") in ci, ".ci/run must run the README's test command as written"
