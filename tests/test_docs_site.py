"""The docs site stays in step with the code and keeps every README command.

The reference pages are generated from the typer apps and the pydantic models by
``scripts/gen_docs.py``; a page that differs from what the code generates now is
stale. The README is a short entry point: every command it shows is documented in
full on some docs page, so shrinking it never loses one.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"^(make|fedlife-(site|coord|sim)|flwr|python) ")


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_pages_are_current():
    stale = [str(path.relative_to(ROOT)) for path in _gen_docs().stale_pages()]
    assert stale == [], "regenerate with `make docs` (python scripts/gen_docs.py)"


def test_a_changed_page_is_stale(tmp_path, monkeypatch):
    gen = _gen_docs()
    pages = gen.pages()
    for path, text in pages.items():
        target = tmp_path / path.name
        target.write_text(text, encoding="utf-8")
    monkeypatch.setattr(gen, "pages", lambda: {tmp_path / p.name: t for p, t in pages.items()})
    assert gen.stale_pages() == []
    (tmp_path / "run-config.md").write_text("# hand-edited\n", encoding="utf-8")
    assert gen.stale_pages() == [tmp_path / "run-config.md"]


def test_the_reference_covers_every_command_and_key():
    gen = _gen_docs()
    site = gen.cli_page("fedlife-site", "client.cli", "")
    assert "## `fedlife-site`" in site and "`fedlife-site label import`" in site
    assert "`--config`, `-c`" in site
    from common.run_config import RunConfig

    run_config = gen.run_config_page()
    for key in RunConfig().to_flower():
        assert f"| `{key}` |" in run_config


def _code_lines(text: str) -> list[str]:
    lines: list[str] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type in {"fence", "code_block"}:
            lines += token.content.splitlines()
    return lines


def test_every_readme_command_is_on_a_docs_page():
    docs = "\n".join(
        line
        for page in sorted((ROOT / "docs").rglob("*.md"))
        for line in _code_lines(page.read_text(encoding="utf-8"))
    )
    commands = [
        line.rstrip()
        for line in _code_lines((ROOT / "README.md").read_text(encoding="utf-8"))
        if COMMAND.match(line)
    ]
    assert len(commands) >= 10
    assert [line for line in commands if line not in docs.splitlines()] == []


def test_readme_starts_with_the_two_commands():
    commands = [
        line.split("#")[0].strip()
        for line in _code_lines((ROOT / "README.md").read_text(encoding="utf-8"))
    ]
    assert commands[:2] == ["make demo", "make test"]
