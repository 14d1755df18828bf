"""What lives beside a site's backups and outlives them: erasures and the ledger's head.

A backup is a picture of the store at one time; a restore must not undo what
happened after it. So every backup folder holds a ``registry/``, kept up to date
while the store lives, which no restore or prune removes:

* ``erasures.jsonl``: every erasure request (its keyed hash and when it was
  recorded), appended when the request is recorded; a restore applies again those
  the backup does not hold done, before the store is usable;
* ``privacy/`` and ``audit/``: the privacy ledger and the audit log (both hash
  chains, see ``client.privacy.ledger_chain``) copied after every ledger entry; a
  restore keeps whichever ledger is later, the backup's or this one, so spent
  budget never comes back.

The store knows its backup folders from ``<store>/retention/backup-dirs.json``,
written by ``fedlife-site backup``. Neither file holds a subject id or a row: keyed
hashes, epsilon accounting and action counts only.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from common.atomic_files import write_atomically
from common.errors import BackupError

REGISTRY = "registry"
ERASURES = "erasures.jsonl"
logger = logging.getLogger(__name__)
# (folder, file) of the two chains copied after every ledger entry
CHAIN_FILES = (
    ("privacy", "ledger.jsonl"),
    ("privacy", "ledger-head.json"),
    ("audit", "audit.jsonl"),
    ("audit", "audit-head.json"),
)


def dirs_file(store_dir: Path) -> Path:
    """``<store>/retention/backup-dirs.json``: the backup folders this store writes to."""
    return Path(store_dir) / "retention" / "backup-dirs.json"


def backup_dirs(store_dir: Path) -> list[Path]:
    """The backup folders of the store (none before its first backup)."""
    path = dirs_file(store_dir)
    if not path.exists():
        return []
    try:
        return [Path(p) for p in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError) as error:
        raise BackupError(f"{path}: list of backup folders is unreadable ({error})") from None


def remember_backup_dir(store_dir: Path, backup_dir: Path) -> None:
    """Add ``backup_dir`` to the store's backup folders; fill its registry from the store."""
    known = backup_dirs(store_dir)
    backup_dir = backup_dir.resolve()
    if backup_dir not in known:
        path = dirs_file(store_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps([str(p) for p in [*known, backup_dir]]), private=True)
    requests = Path(store_dir) / "retention" / "erasure-requests.json"
    if requests.exists():
        recorded = json.loads(requests.read_text(encoding="utf-8"))
        _append_erasures(backup_dir, [(r["request"], r["recorded"]) for r in recorded])
    _copy_chains(Path(store_dir), backup_dir)


def note_erasures(store_dir: Path, digests: list[str]) -> None:
    """Record erasure requests (keyed hashes) beside every backup of the store.

    A backup folder that is not there (a disk not mounted, a folder removed) is
    skipped, never made anew: the next ``backup`` to it copies every request the
    store holds.
    """
    if not digests:
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for backup_dir in _present(store_dir):
        try:
            _append_erasures(backup_dir, [(d, now) for d in digests])
        except BackupError as error:  # the store holds the request: never lose it here
            logger.warning("%s", error)


def note_ledger(store_dir: Path) -> None:
    """Copy the ledger and audit log beside every backup (after a ledger entry).

    A copy that fails is a warning: the entry is in the store's ledger already, and
    the next ``backup`` copies the ledger again.
    """
    for backup_dir in _present(store_dir):
        try:
            _copy_chains(Path(store_dir), backup_dir)
        except BackupError as error:
            logger.warning("%s", error)


def _present(store_dir: Path) -> list[Path]:
    return [d for d in backup_dirs(store_dir) if (d / "fedlife-backup.json").exists()]


def registered_erasures(backup_dir: Path) -> dict[str, str]:
    """Keyed hash -> when first recorded, of every erasure noted beside the backups."""
    path = backup_dir / REGISTRY / ERASURES
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            found.setdefault(str(record["request"]), str(record["recorded"]))
        except (ValueError, KeyError, TypeError):
            raise BackupError(f"{path}: line {number} is not an erasure record") from None
    return found


def _append_erasures(backup_dir: Path, requests: list[tuple[str, str]]) -> None:
    known = registered_erasures(backup_dir)
    new = [(d, t) for d, t in dict(requests).items() if d not in known]
    if not new:
        return
    path = backup_dir / REGISTRY / ERASURES
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "a", encoding="utf-8") as handle:
            for digest, recorded in new:
                handle.write(json.dumps({"request": digest, "recorded": recorded}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise BackupError(
            f"{path}: cannot record the erasure beside the backups ({error.strerror}); "
            "the request is recorded in the store"
        ) from None


def _copy_chains(store_dir: Path, backup_dir: Path) -> None:
    """The ledger and audit files, each written whole then renamed into place."""
    for folder, name in CHAIN_FILES:
        source = store_dir / folder / name
        if not source.exists():
            continue
        target = backup_dir / REGISTRY / folder / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(target, source.read_bytes(), private=True)
        except OSError as error:
            raise BackupError(
                f"{target}: cannot copy the privacy ledger beside the backups ({error.strerror})"
            ) from None
