"""Checksums of every Delta data file, recorded when its commit is made.

Delta's log says which Parquet files make a version, not what they held: a flipped
byte or a file replaced on disk reads back as different rows, or fails deep inside
the Parquet reader. After each commit, :func:`record_checksums` writes the sha256 of
every data file the new version added to ``_fedlife_checksums.json`` beside the
table's ``_delta_log``; :func:`check_table` recomputes those of a version's files
and raises :class:`~common.errors.IntegrityError` naming the first that differs, is
missing, or has no checksum. A table written before checksums were kept has no
manifest: it is reported as unchecked, and its next commit records every file.

Within one process a file's check is remembered by (path, size, mtime): a process
that answers many rounds hashes each file once, and a fresh command checks again.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
from pathlib import Path
from typing import BinaryIO

from deltalake import DeltaTable

from common.atomic_files import write_atomically
from common.errors import IntegrityError

MANIFEST = "_fedlife_checksums.json"
PENDING = MANIFEST + ".pending"  # a commit whose checksums are not recorded yet
_CHECKED: set[tuple[str, int, int, str]] = set()


def sha256_file(path: Path) -> str:
    """sha256 of ``path``'s bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashingFile(io.RawIOBase):
    """A file written through: every byte also goes to a sha256 (``digest``), so a
    file's checksum is known when its writer is done, without reading it back."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest = handle, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # any buffer: bytes, or a view of the writer's memory
        self.digest.update(data)  # releases the GIL: the writer's threads go on encoding
        return self.handle.write(data)


def data_files(table_path: Path, version: int | None = None) -> list[Path]:
    """The Parquet files that make ``version`` (default: the latest) of the table."""
    delta = DeltaTable(table_path) if version is None else DeltaTable(table_path, version=version)
    return [Path(uri.removeprefix("file://")) for uri in delta.file_uris()]


def read_manifest(table_path: Path) -> dict[str, str] | None:
    """Data file (relative to the table) -> sha256; None where no manifest was kept."""
    path = Path(table_path) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise IntegrityError(f"{path}: checksum manifest unreadable ({error})") from None
    if not isinstance(manifest, dict):
        raise IntegrityError(f"{path}: checksum manifest is not a JSON object")
    return manifest


def begin_commit(table_path: Path) -> None:
    """Mark a commit under way: its files get their checksums even if the process is
    killed between the Delta commit and :func:`record_checksums` (which clears it)."""
    (Path(table_path) / PENDING).touch()


def record_checksums(table_path: Path, written: dict[str, str] | None = None) -> None:
    """Add the sha256 of the latest version's files the manifest lacks (after a commit).

    Entries of files no longer on disk (vacuumed) are dropped; those of earlier
    versions' files that are still there stay, so time travel is checked too.

    Parameters
    ----------
    table_path : the table.
    written : file name (relative to the table) -> sha256, for files whose bytes were
        hashed as this process wrote them; the other files are read and hashed.
    """
    known = written or {}
    table_path = Path(table_path)
    with open(table_path / (MANIFEST + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commits never drop each other's entries
        manifest = read_manifest(table_path) or {}
        for path in data_files(table_path):
            name = path.relative_to(table_path).as_posix()
            if name not in manifest:
                manifest[name] = known.get(name) or sha256_file(path)
        manifest = {name: h for name, h in manifest.items() if (table_path / name).exists()}
        write_atomically(table_path / MANIFEST, json.dumps(manifest, indent=0, sort_keys=True))
        (table_path / PENDING).unlink(missing_ok=True)


def check_table(table_path: Path, version: int | None = None) -> int:
    """Check the files of ``version`` (default: latest); the number checked.

    Returns -1 for a table with no manifest (written before checksums were kept).
    Raises IntegrityError naming the first file that is missing, changed or unlisted.
    """
    table_path = Path(table_path)
    manifest = read_manifest(table_path)
    if manifest is None:
        return -1
    files = data_files(table_path, version)
    for path in files:
        name = path.relative_to(table_path).as_posix()
        expected = manifest.get(name)
        if expected is None and (table_path / PENDING).exists():
            # A commit killed before its checksums were recorded: record them now.
            record_checksums(table_path)
            manifest = read_manifest(table_path) or {}
            expected = manifest.get(name)
        if expected is None:
            raise IntegrityError(
                f"{path}: data file has no recorded checksum (added outside fedlife?)"
            )
        try:
            status = path.stat()
        except FileNotFoundError:
            raise IntegrityError(f"{path}: data file is missing") from None
        key = (str(path), status.st_size, status.st_mtime_ns, expected)
        if key in _CHECKED:
            continue
        if sha256_file(path) != expected:
            raise IntegrityError(
                f"{path}: data file does not match the checksum recorded at its commit "
                "(altered or corrupted); restore the store from a backup"
            )
        _CHECKED.add(key)
    return len(files)
