"""The site's archive: expired rows kept as zstd Parquet files, with their own retention.

One file per table and retention pass: ``<archive>/<table>/<UTC time>.parquet.sealed``,
sealed with AES-GCM (``client.sealing``) under a key HKDF draws from the site's key:
the archive may sit outside the store, on a disk others back up, and holds rows
for years. Files are written without column statistics (min/max would repeat row
values in the footer) and appear atomically (written aside, then renamed). Plain
``.parquet`` files of archives written before sealing are still read and erased.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from client.sealing import read_sealed, seal_file
from common.errors import SealError, StoreError

SubjectMatcher = Callable[[pl.DataFrame], pl.Series | None]


class Archive:
    """Parquet files of expired rows under one directory.

    Parameters
    ----------
    root : the archive directory (created on the first write).
    key : the key new files are sealed under and sealed files open with; None
        writes plain Parquet (and cannot read sealed files).
    older_keys : keys of earlier generations that sealed files may still be under
        (a key rotation not finished: ``client.retention.rotate``); only read with.
    """

    def __init__(
        self, root: Path, *, key: bytes | None = None, older_keys: Sequence[bytes] = ()
    ) -> None:
        self.root = Path(root)
        self.key = key
        self.older_keys = tuple(older_keys)

    def check_writable(self) -> None:
        """Fail (before anything is deleted) if the archive cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise StoreError(
                f"{self.root}: archive directory is not writable ({error.strerror}); "
                "nothing was deleted"
            ) from None

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted([*self.root.glob("*/*.parquet"), *self.root.glob("*/*.parquet" + SEALED)])

    def read(self, path: Path) -> pl.DataFrame:
        """The rows of one archive file (sealed or plain)."""
        if path.name.endswith(SEALED):
            if self.key is None:
                raise StoreError(f"{path}: a sealed archive file needs the site's key")
            for key in (self.key, *self.older_keys):
                try:
                    data = read_sealed(key, path, self.context(path))
                except SealError as error:
                    refused = error
                    continue
                return pl.read_parquet(io.BytesIO(data))
            raise StoreError(f"archive file refused: {refused}") from None
        return pl.read_parquet(path)

    def write(self, table: str, frame: pl.DataFrame) -> Path:
        """Archive ``frame`` (expired rows of ``table``); return the new file."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root / table / f"{stamp}.parquet{SEALED if self.key else ''}"
        self._write(frame, target)
        return target

    def erase(self, matcher: SubjectMatcher, *, dry_run: bool) -> dict[str, int]:
        """Remove the rows ``matcher`` flags from every archive file; file -> rows removed.

        A file left empty is deleted; any other is rewritten in place (atomically).
        """
        removed = {}
        for path in self.files():
            frame = self.read(path)
            mask = matcher(frame)
            if mask is None or not mask.any():
                continue
            removed[str(path.relative_to(self.root))] = int(mask.sum())
            if dry_run:
                continue
            kept = frame.filter(~mask)
            if kept.height:
                self._write(kept, path)
            else:
                path.unlink()
        return removed

    def expire(self, max_age_days: float | None, *, dry_run: bool) -> list[Path]:
        """Delete archive files older than ``max_age_days``; return them."""
        if max_age_days is None:
            return []
        cutoff = time.time() - max_age_days * 86400
        expired = [p for p in self.files() if p.stat().st_mtime < cutoff]
        if not dry_run:
            for path in expired:
                path.unlink()
        return expired

    def _write(self, frame: pl.DataFrame, target: Path) -> None:
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.name.endswith(SEALED):
                assert self.key is not None
                buffer = io.BytesIO()  # the rows never reach the disk in clear
                frame.write_parquet(buffer, compression="zstd", statistics=False)
                buffer.seek(0)
                seal_file(self.key, buffer, temporary, self.context(target))
            else:
                frame.write_parquet(temporary, compression="zstd", statistics=False)
            os.replace(temporary, target)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise StoreError(f"{target}: cannot write the archive ({error.strerror})") from None

    def context(self, path: Path) -> str:
        """What a file's seal is bound to: its table and name (files cannot be swapped)."""
        return f"archive|{path.parent.name}/{path.name}"


SEALED = ".sealed"
