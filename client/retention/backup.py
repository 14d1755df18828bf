"""``fedlife-site backup``: encrypted, checksummed, versioned, incremental snapshots.

A backup folder holds::

    fedlife-backup.json     the site's name and the data key, sealed under the passphrase
    objects/<name>          one sealed store file each, named by a keyed hash of its sha256
    snapshots/<time>.snap   sealed: which store file is which object, with its sha256
    registry/               erasures and the ledger, kept beside the backups (backup_registry)

The data key is 32 random bytes made at the first backup; it is sealed (AES-GCM)
under a key that scrypt draws from the operator's passphrase, and HKDF draws the
keys for objects, names and snapshots from it. A snapshot holds the latest version
of every table (its data files, the whole ``_delta_log`` and the checksum manifest),
the ledger, the audit log, the erasure requests and the store's keys. A file whose
content is already an object is not copied again, so a second backup writes only
what changed. Snapshots older than ``retention.backup_max_age_days`` are pruned with
the objects only they used.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from client.integrity import data_files, read_manifest, sha256_file
from client.retention.backup_registry import remember_backup_dir
from client.retention.erasure import site_key
from client.sealing import (
    SCRYPT_N,
    derive_key,
    open_bytes,
    passphrase_key,
    seal_bytes,
    seal_file,
)
from client.site_audit import site_audit
from client.store import SiteStore
from common.atomic_files import write_atomically
from common.config import SiteConfig
from common.errors import BackupError, BackupKeyError, BackupSiteError, SealError

HEADER = "fedlife-backup.json"
OBJECTS, SNAPSHOTS = "objects", "snapshots"
_TIME = "%Y%m%dT%H%M%S%fZ"
# Left out of a snapshot: locks, half-written files, a prepare's scratch stage.
_SKIPPED_SUFFIXES = (".lock", ".part", ".tmp")


@dataclass
class BackupKeys:
    """The keys of one backup folder, drawn from its data key."""

    objects: bytes
    names: bytes
    snapshots: bytes

    @classmethod
    def of(cls, data_key: bytes) -> BackupKeys:
        return cls(
            derive_key(data_key, "fedlife backup objects"),
            derive_key(data_key, "fedlife backup names"),
            derive_key(data_key, "fedlife backup snapshots"),
        )

    def object_name(self, sha256: str) -> str:
        """A file's object name: keyed, so equal names say nothing about content."""
        return hmac.digest(self.names, bytes.fromhex(sha256), "sha256").hex()


@dataclass
class BackupReport:
    """What one backup did.

    Parameters
    ----------
    snapshot : the new snapshot's file name.
    files : store files in it.
    copied : files sealed into new objects (the rest were already there).
    bytes_written : bytes of new objects and the snapshot.
    pruned : snapshots removed as older than ``backup_max_age_days``.
    """

    snapshot: str
    files: int
    copied: int
    bytes_written: int
    pruned: list[str] = field(default_factory=list)


def open_keys(backup_dir: Path, site: str, passphrase: str, *, create: bool = False) -> BackupKeys:
    """The folder's keys from ``passphrase``; ``create`` makes a new folder's data key.

    Raises BackupSiteError for another site's backup, BackupKeyError for a wrong
    passphrase, BackupError where there is no backup.
    """
    header_path = backup_dir / HEADER
    if not header_path.exists():
        if not create:
            raise BackupError(f"{backup_dir}: no fedlife backup here ({HEADER} missing)")
        if backup_dir.exists() and any(backup_dir.iterdir()):
            raise BackupError(
                f"{backup_dir}: not empty and not a fedlife backup folder; give a new folder"
            )
        return _create(backup_dir, site, passphrase)
    try:
        header = json.loads(header_path.read_text(encoding="utf-8"))
        kdf, wrapped = header["kdf"], bytes.fromhex(header["wrapped_key"])
        owner = str(header["site"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BackupError(f"{header_path}: backup header unreadable ({error})") from None
    if owner != site:
        raise BackupSiteError(f"{backup_dir}: a backup of site {owner!r}, not of {site!r}")
    kek = passphrase_key(passphrase, bytes.fromhex(kdf["salt"]), n=int(kdf["n"]))
    try:
        data_key = open_bytes(kek, wrapped, f"backup key|{site}", what=str(header_path))
    except SealError:
        raise BackupKeyError(
            f"{backup_dir}: wrong passphrase for this backup (its key does not open)"
        ) from None
    return BackupKeys.of(data_key)


def _create(backup_dir: Path, site: str, passphrase: str) -> BackupKeys:
    data_key, salt = os.urandom(32), os.urandom(16)
    kek = passphrase_key(passphrase, salt, n=SCRYPT_N)
    header = {
        "format": 1,
        "site": site,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "kdf": {"name": "scrypt", "n": SCRYPT_N, "r": 8, "p": 1, "salt": salt.hex()},
        "wrapped_key": seal_bytes(kek, data_key, f"backup key|{site}").hex(),
    }
    for folder in (backup_dir, backup_dir / OBJECTS, backup_dir / SNAPSHOTS):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(backup_dir / HEADER, json.dumps(header, indent=1), private=True)
    return BackupKeys.of(data_key)


def store_files(store_dir: Path) -> dict[str, str]:
    """Store file (relative path) -> sha256, of what a snapshot holds.

    Every table's latest version (checked against its checksums first, so a damaged
    store is never backed up as if it were sound), its whole log and manifest, and
    every other store file but locks, half-written files and scratch stages.
    """
    store = SiteStore(store_dir)
    store.verify_latest()  # the first bad data file raises, naming it
    found: dict[str, str] = {}
    skipped: set[Path] = set()
    for log in sorted(store_dir.glob("tables/*/_delta_log")):
        table = log.parent
        latest = set(data_files(table))
        manifest = read_manifest(table) or {}
        for path in table.rglob("*.parquet"):
            if log in path.parents:
                continue
            if path in latest:
                name = path.relative_to(table).as_posix()
                found[path.relative_to(store_dir).as_posix()] = manifest.get(name) or sha256_file(
                    path
                )
            skipped.add(path)
    for path in sorted(store_dir.rglob("*")):
        relative = path.relative_to(store_dir)
        if (
            not path.is_file()
            or path in skipped
            or path.name.endswith(_SKIPPED_SUFFIXES)
            or any(part.startswith(".stage-") for part in relative.parts)
        ):
            continue
        found.setdefault(relative.as_posix(), sha256_file(path))
    return found


def backup(config: SiteConfig, backup_dir: Path, passphrase: str) -> BackupReport:
    """Write a snapshot of the site's store to ``backup_dir``; prune old snapshots."""
    store_dir = config.store_dir
    if not store_dir.is_dir():
        raise BackupError(f"{store_dir}: no store to back up (run fedlife-site prepare)")
    backup_dir = backup_dir.resolve()
    if backup_dir == store_dir or store_dir in backup_dir.parents:
        raise BackupError(f"{backup_dir}: a backup folder cannot be inside the store")
    keys = open_keys(backup_dir, config.site.name, passphrase, create=True)
    # The key erasures are hashed under must be in every snapshot: a request recorded
    # after it (kept beside the backups) is applied again under this key.
    site_key(store_dir)
    taken = datetime.now(UTC)
    files = store_files(store_dir)
    entries, copied, written = [], 0, 0
    try:
        for relative, digest in sorted(files.items()):
            name = keys.object_name(digest)
            target = backup_dir / OBJECTS / name
            if not target.exists():
                written += seal_file(keys.objects, store_dir / relative, target, name)
                os.chmod(target, 0o600)
                copied += 1
            size = (store_dir / relative).stat().st_size
            entries.append({"path": relative, "object": name, "sha256": digest, "size": size})
        snapshot = {
            "format": 1,
            "site": config.site.name,
            "taken": taken.isoformat(),
            "files": entries,
        }
        snapshot_name = taken.strftime(_TIME) + ".snap"
        sealed = seal_bytes(keys.snapshots, json.dumps(snapshot).encode(), snapshot_name)
        write_atomically(backup_dir / SNAPSHOTS / snapshot_name, sealed, private=True)
        written += len(sealed)
        remember_backup_dir(store_dir, backup_dir)
    except OSError as error:
        raise BackupError(f"{backup_dir}: cannot write the backup ({error.strerror})") from None
    max_age = config.retention.backup_max_age_days
    pruned = [] if max_age is None else prune(backup_dir, keys, taken - timedelta(days=max_age))
    report = BackupReport(snapshot_name, len(entries), copied, written, pruned)
    site_audit(config).append(
        "backup",
        snapshot=snapshot_name,
        files=report.files,
        copied=copied,
        bytes_written=written,
        pruned=len(pruned),
    )
    return report


def snapshot_names(backup_dir: Path) -> list[str]:
    """The folder's snapshots, oldest first."""
    return sorted(p.name for p in (backup_dir / SNAPSHOTS).glob("*.snap"))


def snapshot_time(name: str) -> datetime:
    """When the snapshot ``name`` was taken (UTC)."""
    return datetime.strptime(name.removesuffix(".snap"), _TIME).replace(tzinfo=UTC)


def read_snapshot(backup_dir: Path, keys: BackupKeys, name: str) -> dict:
    """A snapshot's list of files; SealError where it was altered."""
    path = backup_dir / SNAPSHOTS / name
    return json.loads(open_bytes(keys.snapshots, path.read_bytes(), name, what=str(path)))


def prune(backup_dir: Path, keys: BackupKeys, cutoff: datetime) -> list[str]:
    """Remove snapshots taken before ``cutoff`` (never the newest) and unused objects."""
    names = snapshot_names(backup_dir)
    old = [n for n in names[:-1] if snapshot_time(n) < cutoff]
    for name in old:
        (backup_dir / SNAPSHOTS / name).unlink()
    if old:
        used = {
            entry["object"]
            for name in snapshot_names(backup_dir)
            for entry in read_snapshot(backup_dir, keys, name)["files"]
        }
        for path in (backup_dir / OBJECTS).iterdir():
            if path.name not in used:
                path.unlink()
    return old
