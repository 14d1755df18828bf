"""The table of every field a site sends, derived from the wire models.

``FIELDS`` maps (record, key) to its privacy class; ``markdown()`` renders the table of
``docs/privacy/threat-model.md`` (``python -m common.wire.table
docs/privacy/threat-model.md`` rewrites it; a test keeps the file in step).
"""

from __future__ import annotations

from common.wire.messages import REPLIES
from common.wire.privacy import Privacy

ANY = "*"


def rows() -> list[tuple[str, str, str, Privacy, str]]:
    """(message, record, key, class, protection) of every field of every reply."""
    found = []
    for message in REPLIES:
        for record, (privacy, protection) in message.ARRAYS.items():
            found.append((message.TITLE, record, ANY, privacy, protection))
        for record, model in message.records():
            for key, privacy, protection in model.fields():
                found.append((message.TITLE, record, key, privacy, protection))
    return found


def _fields() -> dict[tuple[str, str], Privacy]:
    table: dict[tuple[str, str], Privacy] = {}
    for _, record, key, privacy, _ in rows():
        # One (record, key) has one class in every message that carries it.
        assert table.get((record, key), privacy) is privacy, (record, key)
        table[(record, key)] = privacy
    return table


FIELDS = _fields()


def protection(record: str, key: str) -> Privacy | None:
    """How the field ``key`` of record ``record`` is protected; None: not a known field."""
    return FIELDS.get((record, key)) or FIELDS.get((record, ANY))


def markdown() -> str:
    """The table as Markdown: one row per (record, key), with the messages carrying it."""
    carried: dict[tuple[str, str], list[str]] = {}
    described: dict[tuple[str, str], tuple[Privacy, str]] = {}
    for message, record, key, privacy, text in rows():
        carried.setdefault((record, key), []).append(message)
        described.setdefault((record, key), (privacy, text))
    lines = [
        "| record | key | class | protection | sent in |",
        "|---|---|---|---|---|",
    ]
    for (record, key), messages in carried.items():
        privacy, text = described[(record, key)]
        lines.append(f"| `{record}` | `{key}` | {privacy.value} | {text} | {', '.join(messages)} |")
    return "\n".join(lines) + "\n"


START, END = "<!-- fields:start -->", "<!-- fields:end -->"


def with_table(document: str) -> str:
    """``document`` with the text between the START and END markers replaced by the table."""
    head, _, rest = document.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown()}{END}{tail}"


if __name__ == "__main__":  # python -m common.wire.table docs/privacy/threat-model.md
    import sys
    from pathlib import Path

    path = Path(sys.argv[1])
    path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
