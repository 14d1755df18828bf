"""Where the privacy ledger's entries live: a hash chain that cannot go backwards.

The ledger is the site's memory of what it has spent. Deleting it must not reset the
budget, and editing a noise multiplier must not lower it. So the entries are the
links of a hash chain (``common.audit.AuditLog``'s format: seq, previous hash, own
hash, and a head file), and the two chains a site keeps watch each other:

* after every entry, the site's audit log records the ledger's new head
  (``ledger-head``: seq and hash), so a ledger that is removed, truncated or rolled
  back to an earlier copy no longer reaches the head the audit log remembers;
* every ledger entry records the audit log's head when it was written (``audit_seq``
  and ``audit_hash``), so an audit log cut back behind it, or rewritten from there,
  is noticed too.

A damaged chain raises :class:`StoreError` with one line naming the file and the
first bad place: the site refuses to train or release until the ledger is restored.
Removing both logs at once is the one thing a site alone cannot notice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from client.retention.backup_registry import note_ledger
from common.audit import AuditLog
from common.errors import StoreError

LEDGER_NAME, LEDGER_HEAD = "ledger.jsonl", "ledger-head.json"
RELEASE, HEAD_RECORD = "dp-release", "ledger-head"
AUDIT_SEQ, AUDIT_HASH = "audit_seq", "audit_hash"


class LedgerChain:
    """The chained entries of ``<store>/privacy/ledger.jsonl``, checked against the audit log.

    Parameters
    ----------
    store_dir : the site's store directory.
    """

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir = Path(store_dir)
        self.chain = AuditLog(
            store_dir / "privacy", "privacy ledger", log_name=LEDGER_NAME, head_name=LEDGER_HEAD
        )
        self.audit = AuditLog(store_dir / "audit", "privacy ledger")
        self.path = self.chain.path
        self._checked: tuple[Any, list[dict[str, Any]]] | None = None

    def append(self, fields: dict[str, Any]) -> None:
        """Add one release after checking the chain; then tell the audit log its new head."""
        self.releases()  # never extend a damaged ledger
        audit_seq, audit_hash = self.audit.head()
        entry = self.chain.append(
            RELEASE, **fields, **{AUDIT_SEQ: audit_seq, AUDIT_HASH: audit_hash}
        )
        self.audit.append(HEAD_RECORD, seq=entry["seq"], hash=entry["hash"])
        note_ledger(self.store_dir)  # a restore keeps the later of this and a backup's

    def releases(self) -> list[dict[str, Any]]:
        """The fields of every release, once the chain and both heads check out."""
        self._migrate()
        state = (_stat(self.chain.path), _stat(self.chain.head_path), _stat(self.audit.path))
        if self._checked is not None and self._checked[0] == state:
            return self._checked[1]
        problem = self.chain.verify()
        if problem is not None:
            raise StoreError(f"{self.path}: privacy ledger is damaged at {problem}")
        entries = self.chain.entries()
        audit = self._audit_entries()
        remembered = [e["fields"] for e in audit if e.get("action") == HEAD_RECORD]
        if remembered:
            seq, head_hash = int(remembered[-1]["seq"]), remembered[-1]["hash"]
            if len(entries) < seq or entries[seq - 1]["hash"] != head_hash:
                raise StoreError(
                    f"{self.path}: privacy ledger was removed or rolled back (the audit log "
                    f"records its entry {seq}, it holds {len(entries)}); restore it before "
                    "the site trains or releases again"
                )
        seen = [e["fields"] for e in entries if int(e["fields"].get(AUDIT_SEQ, 0)) > 0]
        recorded = int(seen[-1][AUDIT_SEQ]) if seen else 0
        if len(audit) < recorded:
            raise StoreError(
                f"{self.audit.path}: audit log was removed or rolled back (the privacy ledger "
                f"saw it at entry {recorded}, it holds {len(audit)})"
            )
        if recorded and seen[-1].get(AUDIT_HASH, audit[recorded - 1].get("hash")) != audit[
            recorded - 1
        ].get("hash"):
            raise StoreError(
                f"{self.audit.path}: audit log was rewritten (its entry {recorded} is not the "
                "one the privacy ledger saw)"
            )
        releases = [
            {k: v for k, v in e["fields"].items() if k not in (AUDIT_SEQ, AUDIT_HASH)}
            for e in entries
            if e.get("action") == RELEASE
        ]
        self._checked = (state, releases)
        return releases

    def _audit_entries(self) -> list[dict[str, Any]]:
        try:
            return self.audit.entries()
        except (OSError, json.JSONDecodeError) as error:
            raise StoreError(f"{self.audit.path}: audit log is unreadable ({error})") from None

    def _migrate(self) -> None:
        """A ledger written before the chain becomes its first links (the old file is kept)."""
        if not self.path.exists() or self.chain.head_path.exists():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line]
        try:
            old = [json.loads(line) for line in lines]
        except json.JSONDecodeError as error:
            raise StoreError(f"{self.path}: privacy ledger is corrupt ({error})") from None
        if not lines or any(not isinstance(e, dict) or "prev_hash" in e for e in old):
            if lines and self.chain.verify() is not None:  # the head was removed
                raise StoreError(f"{self.path}: privacy ledger's head file is missing")
            return  # empty, or a first entry whose append stopped before its head
        self.path.replace(self.path.with_suffix(".jsonl.pre-chain"))
        for fields in old:
            entry = self.chain.append(RELEASE, **fields, **{AUDIT_SEQ: 0})
        self.audit.append(HEAD_RECORD, seq=entry["seq"], hash=entry["hash"], migrated=len(old))


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_mtime_ns, status.st_size
