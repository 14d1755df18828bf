"""docs/privacy/threat-model.md holds the table the wire contracts generate."""

from __future__ import annotations

from pathlib import Path

from common.wire.table import END, START, markdown, with_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy" / "threat-model.md"


def test_the_committed_threat_model_table_is_up_to_date():
    text = DOC.read_text(encoding="utf-8")
    assert with_table(text) == text, (
        "regenerate: python -m common.wire.table docs/privacy/threat-model.md"
    )
    table = text.split(START, 1)[1].split(END, 1)[0]
    assert "| `metrics` | `num-examples` | coarsened |" in table
    assert table.strip() == markdown().strip()


def test_a_stale_table_is_caught():
    text = DOC.read_text(encoding="utf-8")
    stale = text.replace("| coarsened |", "| open |", 1)
    assert with_table(stale) != stale
