"""``fedlife-site restore``: a snapshot back into an empty store, erasures applied again.

The restore is built in a scratch folder beside the store and renamed into place
only once it is whole and checked, so a refusal leaves nothing behind:

1. every object opens under the backup's key (AES-GCM: an altered byte fails) and
   has the sha256 the snapshot recorded, else the restore is refused naming it;
   each table's history starts at its latest version (the only one backed up);
2. the privacy ledger and the audit log are the later of the snapshot's and the
   copy kept beside the backups (``backup_registry``): spent budget never returns;
3. every erasure noted beside the backups that the snapshot does not hold done is
   recorded again and carried out (``retain``), so no erased subject comes back;
4. the tables' checksums and the two chains are checked, the restore is written to
   the audit log, folders are made 0700 and files 0600.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from client.integrity import sha256_file
from client.privacy.ledger_chain import LedgerChain
from client.retention import history as delta_history
from client.retention.backup import (
    BackupKeys,
    open_keys,
    read_snapshot,
    snapshot_names,
    snapshot_time,
)
from client.retention.backup_registry import CHAIN_FILES, REGISTRY, registered_erasures
from client.retention.erasure import ErasureRequests
from client.retention.retain import retain
from client.sealing import open_file
from client.site_audit import site_audit
from client.store import SiteStore
from common.config import SiteConfig
from common.errors import (
    BackupError,
    BackupTamperedError,
    RestoreTargetError,
    SealError,
    StoreError,
)


@dataclass
class RestoreReport:
    """What a restore did.

    Parameters
    ----------
    snapshot : the snapshot restored.
    files : store files written.
    ledger : 'backup' or 'registry': whose ledger and audit log were kept.
    releases : privacy releases in the restored ledger.
    erasures_reapplied : erasure requests recorded after the snapshot, carried out again.
    rows_erased : rows those requests removed.
    """

    snapshot: str
    files: int
    ledger: str
    releases: int
    erasures_reapplied: int
    rows_erased: int


def pick_snapshot(backup_dir: Path, at: datetime | None) -> str:
    """The newest snapshot, or the newest taken at or before ``at``."""
    names = snapshot_names(backup_dir)
    if at is not None:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        names = [n for n in names if snapshot_time(n) <= at]
    if not names:
        when = "" if at is None else f" taken at or before {at.isoformat()}"
        raise BackupError(f"{backup_dir}: no snapshot{when}")
    return names[-1]


def restore(
    config: SiteConfig, backup_dir: Path, passphrase: str, *, at: datetime | None = None
) -> RestoreReport:
    """Restore the snapshot (newest, or the newest at ``at``) into the site's empty store."""
    store_dir = config.store_dir
    if store_dir.exists() and (not store_dir.is_dir() or any(store_dir.iterdir())):
        raise RestoreTargetError(
            f"{store_dir}: the store is not empty; restore only into an empty or absent store "
            "(move it aside first)"
        )
    backup_dir = backup_dir.resolve()
    keys = open_keys(backup_dir, config.site.name, passphrase)
    name = pick_snapshot(backup_dir, at)
    scratch = store_dir.with_name(f".{store_dir.name}.restoring-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        snapshot = _read(backup_dir, keys, name)
        for entry in snapshot["files"]:
            _restore_file(backup_dir, keys, entry, scratch)
        for table in delta_history.delta_tables(scratch / "tables"):
            # Only the latest version's files are in a snapshot: the earlier versions
            # are forgotten, so nothing asks for a file that is not there.
            delta_history.truncate_history(table, delta_history.commits(table)[-1].version)
        ledger = _later_ledger(backup_dir, scratch)
        restored = config.model_copy(
            update={"site": config.site.model_copy(update={"store": str(scratch)})}
        )
        reapplied, rows = _reapply_erasures(restored, backup_dir)
        SiteStore(scratch).verify_latest()
        releases = len(LedgerChain(scratch).releases())
        site_audit(restored).append(
            "restore",
            snapshot=name,
            files=len(snapshot["files"]),
            ledger=ledger,
            erasures_reapplied=reapplied,
        )
        _private(scratch)
        if store_dir.exists():
            store_dir.rmdir()  # empty, checked above
        store_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(scratch, store_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return RestoreReport(name, len(snapshot["files"]), ledger, releases, reapplied, rows)


def _read(backup_dir: Path, keys: BackupKeys, name: str) -> dict:
    try:
        return read_snapshot(backup_dir, keys, name)
    except SealError as error:
        raise BackupTamperedError(f"refused: {error}") from None
    except (OSError, ValueError) as error:
        raise BackupTamperedError(f"{backup_dir}: snapshot {name} unreadable ({error})") from None


def _restore_file(backup_dir: Path, keys: BackupKeys, entry: dict, scratch: Path) -> None:
    relative = Path(entry["path"])
    if relative.is_absolute() or ".." in relative.parts:
        raise BackupTamperedError(f"refused: snapshot names a path outside the store: {relative}")
    source = backup_dir / "objects" / entry["object"]
    if not source.exists():
        raise BackupTamperedError(f"refused: {source} is missing (store file {relative})")
    target = scratch / relative
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        open_file(keys.objects, source, target, entry["object"])
    except SealError as error:
        raise BackupTamperedError(f"refused: {error} (store file {relative})") from None
    if sha256_file(target) != entry["sha256"]:
        raise BackupTamperedError(
            f"refused: {source} does not hold the store file {relative} the snapshot recorded"
        )


def _ledger_seq(folder: Path) -> int:
    head = folder / "privacy" / "ledger-head.json"
    if not head.exists():
        return 0
    try:
        return int(json.loads(head.read_text(encoding="utf-8"))["seq"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackupTamperedError(f"{head}: ledger head unreadable ({error})") from None


def _later_ledger(backup_dir: Path, scratch: Path) -> str:
    """Keep the registry's ledger and audit log where its ledger is further on."""
    registry = backup_dir / REGISTRY
    if _ledger_seq(registry) <= _ledger_seq(scratch):
        return "backup"
    for folder, name in CHAIN_FILES:
        if (registry / folder / name).exists():
            (scratch / folder).mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(registry / folder / name, scratch / folder / name)
    try:
        LedgerChain(scratch).releases()
    except StoreError as error:
        raise BackupTamperedError(
            f"refused: the privacy ledger kept beside the backups is damaged ({error})"
        ) from None
    return "registry"


def _reapply_erasures(config: SiteConfig, backup_dir: Path) -> tuple[int, int]:
    requests = ErasureRequests(config.store_dir)
    held = {r.request for r in requests.all()}
    later = [d for d in registered_erasures(backup_dir) if d not in held]
    if later:
        requests.add(later)
    if not requests.pending():
        return 0, 0
    report = retain(config, expire=False)
    return len(later), sum(t.erased for t in report.tables)


def _private(root: Path) -> None:
    """Folders 0700, files 0600: the store is the site's alone."""
    os.chmod(root, 0o700)
    for path in root.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
