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
COMMAND = re.compile(r"^(fedlife-(site|coord|sim)|flwr|make|python) [a-z-]")


def _prose_lines(text: str) -> list[str]:
    """Lines the parser renders as prose (paragraphs, lists, headings)."""
    lines = text.splitlines()
    prose: list[str] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type in {"paragraph_open", "heading_open"} and token.map:
            start, end = token.map
            prose += lines[start:end]
    return prose


def _unclosed_fences(text: str) -> list[int]:
    """First lines of fences that run to the end of the page without a closing marker."""
    lines = text.splitlines()
    unclosed = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "fence" and token.map:
            start, end = token.map
            # A closed fence's last line is its closing marker; an unclosed one swallows the rest.
            if end - start < 2 or not lines[end - 1].strip().startswith(token.markup):
                unclosed.append(start + 1)
    return unclosed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_fences_are_balanced(page):
    assert _unclosed_fences(page.read_text()) == []


def test_an_unclosed_fence_is_caught():
    assert _unclosed_fences("Text.\n\n```\nmake demo\n\nMore text.\n") == [3]
    assert _unclosed_fences("```\nmake demo\n```\n") == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_line_renders_as_code(page):
    in_prose = [line for line in _prose_lines(page.read_text()) if COMMAND.match(line.strip())]
    assert in_prose == []


def test_a_missing_fence_is_caught():
    broken = "Intro.\n\nfedlife-sim sweep --seed 1-5\n```\n\nText.\n"
    assert [line for line in _prose_lines(broken) if COMMAND.match(line)]
