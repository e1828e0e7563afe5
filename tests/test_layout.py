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
