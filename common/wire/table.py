"""The table of every field a site sends, derived from the wire models.

``FIELDS`` maps (record, key) to its privacy class and protection; ``markdown()``
renders the table of ``docs/privacy/threat-model.md`` (a test keeps that file in step).
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
    """The table as Markdown: message, record, key, class, protection."""
    lines = [
        "| message | record | key | class | protection |",
        "|---|---|---|---|---|",
    ]
    for message, record, key, privacy, text in rows():
        lines.append(f"| {message} | `{record}` | `{key}` | {privacy.value} | {text} |")
    return "\n".join(lines) + "\n"
