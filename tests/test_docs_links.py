"""Every relative link in the README and docs/ leads somewhere: a file that exists, a heading in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped (not hyphens), spaces to hyphens."""
    text = CODE_BLOCK.sub("", page.read_text())
    found = set()
    for heading in HEADING.findall(text):
        plain = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")
        candidate, n = slug, 1
        while candidate in found:  # a repeated heading gets -1, -2…
            candidate, n = f"{slug}-{n}", n + 1
        found.add(candidate)
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(CODE_BLOCK.sub("", page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:…: not ours to check
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target}: no such heading")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_docs_exist_and_the_readme_stays_a_front_door() -> None:
    assert {p.name for p in PAGES} >= {
        "README.md",
        "configuration.md",
        "http-api.md",
        "operations.md",
        "architecture.md",
        "benchmarks.md",
    }
    assert len((ROOT / "README.md").read_text().splitlines()) <= 260


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Only heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n[ok](other.md#only-heading) [self](#a-page) [web](https://example.org)\n"
        "[gone](missing.md) [wrong](other.md#nothing) [mine](#nowhere)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nothing: no such heading",
        "#nowhere: no such heading",
    ]
