"""Sealed files for people: the annotators' queue sheets and the profile reports.

What the site writes for a person to read (``store/labeling/queue-vN.csv``,
``store/reports/hist-<column>.png``, ``store/reports/label_issues.csv``) holds row
ids and values, so it is written sealed like the archive: ``<name>.sealed``, AES-GCM
(``client.sealing``) under a key HKDF draws from the site's sealing key
(``client.sealing_keys``), each file bound to its name, so a file renamed,
swapped for another or altered does not open. ``fedlife-site open`` opens one for a
person; the readers inside fedlife (erasure, the migration, label import) open them
themselves. Plain files written before sealing are still read, and are sealed when
fedlife rewrites them.
"""

from __future__ import annotations

import io
from pathlib import Path

from client.sealing import MAGIC, read_sealed, seal_file
from client.sealing_keys import sealing_keys
from common.errors import SealError

SEALED = ".sealed"
PURPOSE = "fedlife sheets and reports"


def context(name: str) -> str:
    """What a file's seal is bound to: its name without ``.sealed``."""
    return f"site-file|{name.removesuffix(SEALED)}"


def write_sealed(store_dir: Path, target: Path, data: bytes) -> Path:
    """Seal ``data`` into ``target`` + ``.sealed`` (written aside, then renamed: a reader
    sees the old file or the new one whole); return the sealed file.

    ``target`` : the plain name the file stands for (``queue-v3.csv``); a plain file of
        that name, written before sealing, is removed once the sealed one is in place.
    """
    key = sealing_keys(store_dir, PURPOSE)[0]
    sealed = target.with_name(target.name + SEALED)
    sealed.parent.mkdir(parents=True, exist_ok=True)
    seal_file(key, io.BytesIO(data), sealed, context(target.name))
    target.unlink(missing_ok=True)
    return sealed


def is_sealed(path: Path) -> bool:
    """Whether ``path`` starts as a sealed fedlife file does (whatever its name)."""
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def read_file(store_dir: Path, path: Path) -> bytes:
    """The content of a sheet or report, sealed (opened with the site's key) or plain.

    Raises SealError, naming the file, if a sealed one was altered, renamed or
    sealed by another site.
    """
    if not is_sealed(path):
        return path.read_bytes()
    for key in sealing_keys(store_dir, PURPOSE):
        try:
            return read_sealed(key, path, context(path.name))
        except SealError:
            continue
    raise SealError(
        f"{path}: does not open with this site's key: altered, renamed, or sealed by another site"
    )


def sheets(folder: Path, pattern: str) -> list[Path]:
    """The files of ``folder`` named by ``pattern``, sealed (``pattern.sealed``) or plain."""
    if not folder.is_dir():
        return []
    return sorted({*folder.glob(pattern), *folder.glob(pattern + SEALED)})


def plain_path(path: Path) -> Path:
    """The name a (sealed) file stands for: ``queue-v3.csv`` for ``queue-v3.csv.sealed``."""
    return path.with_name(path.name.removesuffix(SEALED))
