"""The repository explains itself: README.md, CONTRIBUTING.md and SECURITY.md link only
inside the repository, to files that exist (and to headings of their own that exist)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Written on main in parallel with this test; drop from here once it is there.
PENDING: set[str] = set()  # paths a link may name before they exist


def anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "SECURITY.md"])
def test_links_stay_inside_the_repository(name: str) -> None:
    text = (ROOT / name).read_text()
    for target in LINK.findall(text):
        assert "://" not in target and not target.startswith("/"), target
        path, _, anchor = target.partition("#")
        if path:
            assert (ROOT / path).exists() or path in PENDING, target
        else:
            assert anchor in anchors(text), target
