"""The layout is the design: layers import only downwards, and no import cycle joins them.

Providers (fetch, parse, validate) may use widget data models, settings and text conventions, but
never the engine or the web face; the engine never imports the web face; the cache backends
import nothing of the service.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "providers": ("service.engine", "service.web"),
    "service/engine": ("service.web", "service.satellite"),
    "service/widgets": ("service.engine", "service.web", "providers"),
    "cache": ("service", "providers"),
    "service/history": ("providers",),
}


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for module in sorted(imported_modules(path))
        if any(module == banned or module.startswith(banned + ".") for banned in FORBIDDEN[layer])
    ]
    assert offences == []


def test_the_service_ships_no_test_widget() -> None:
    shipped = [p for d in ("service", "providers") for p in (ROOT / d).rglob("*.py")]
    assert not [p for p in shipped if "probe" in p.stem]


#: Functions that read the host's clock. Only the clock module may touch them: everything else gets
#: time from the clock it is given, so a test's clock is the only clock, on any day.
HOST_CLOCK = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "localtime", "gmtime", "ctime", "strftime"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
}
CLOCK_MODULE = ROOT / "service" / "engine" / "clock.py"


def host_clock_reads(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line owner.name`` for each read of the host's clock, in source order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute):
            base = node.value
            owner = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            if node.attr in HOST_CLOCK.get(owner, ()):
                found.append((node.lineno, f"{owner}.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module == "time" and node.level == 0:
            found += [
                (node.lineno, f"from time import {a.name}")
                for a in node.names
                if a.name in HOST_CLOCK["time"]
            ]
    return [f"{path.relative_to(root)}:{line} {what}" for line, what in sorted(found)]


def test_only_the_clock_module_reads_the_host_clock() -> None:
    shipped = sorted(p for d in ("service", "providers", "cache") for p in (ROOT / d).rglob("*.py"))
    assert [read for path in shipped if path != CLOCK_MODULE for read in host_clock_reads(path)] == []


def test_the_clock_check_sees_every_form_of_reading_the_host_clock(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time, datetime as dt\nfrom datetime import date, datetime\nfrom time import monotonic\n"
        "a = time.time()\nb = datetime.now()\nc = date.today()\nd = dt.datetime.utcnow()\n"
        "e = time.monotonic\nf = datetime.fromtimestamp(0)\n",
        encoding="utf-8",
    )
    reads = [line.split(" ", 1)[1] for line in host_clock_reads(sample, root=tmp_path)]
    assert reads == [
        "from time import monotonic",
        "time.time",
        "datetime.now",
        "date.today",
        "datetime.utcnow",
        "time.monotonic",
    ]


#: The tests whose meaning depends on dates. Their "now" is the clock they give the service (a fake
#: one, or the service's own system clock, which fixtures are then dated from), never the day
#: they run on. Waiting on a monotonic deadline is not reading the date, and stays allowed.
DATED_TESTS = ("tests/providers", "tests/service/widgets", "tests/support")
MONOTONIC = {"time.monotonic", "time.monotonic_ns", "from time import monotonic"}


def test_tests_of_dated_answers_never_read_the_date_they_run_on() -> None:
    reads = [
        read
        for folder in DATED_TESTS
        for path in sorted((ROOT / folder).rglob("*.py"))
        for read in host_clock_reads(path)
        if read.split(" ", 1)[1] not in MONOTONIC
    ]
    assert reads == []
