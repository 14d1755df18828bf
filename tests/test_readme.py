"""The README (and docs) render as written: every command sits in a code block.

One missing fence flips every block after it: commands render as prose, prose as
code. Rendering with a real Markdown parser catches it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMAND = re.compile(r"^(fedlife-(site|coord|sim)|flwr|make) [a-z-]")


def _prose_lines(text: str) -> list[str]:
    """Lines the parser renders as prose (paragraphs, lists, headings)."""
    lines = text.splitlines()
    prose: list[str] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type in {"paragraph_open", "heading_open"} and token.map:
            start, end = token.map
            prose += lines[start:end]
    return prose


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_line_renders_as_code(page):
    in_prose = [line for line in _prose_lines(page.read_text()) if COMMAND.match(line.strip())]
    assert in_prose == []


def test_a_missing_fence_is_caught():
    broken = "Intro.\n\nfedlife-sim sweep --seed 1-5\n```\n\nText.\n"
    assert [line for line in _prose_lines(broken) if COMMAND.match(line)]
