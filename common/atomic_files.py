"""Files written whole or not at all: a reader finds the old content or the new one.

Each write goes to a temporary file beside the target, which is then renamed over it
(``os.replace`` is atomic on POSIX). A process killed midway leaves at most the
temporary file, which readers ignore and the next write replaces.
"""

from __future__ import annotations

import os
from pathlib import Path

TEMPORARY_SUFFIX = ".tmp"


def write_atomically(
    path: Path, data: bytes | str, *, private: bool = False, durable: bool = False
) -> None:
    """Replace ``path``'s content with ``data`` in one step.

    Parameters
    ----------
    path : the file to write; its folder must exist.
    data : the whole new content; text is written as UTF-8.
    private : create the file owner-only (0600) whatever the umask: for keys, and for
        anything that names subjects or backups.
    durable : fsync the file before the rename and its folder after, so the new
        content survives a power loss once this returns: for state whose loss would
        cost privacy (key generations), not for what can be written again.
    """
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    content = data.encode() if isinstance(data, str) else data
    mode = 0o600 if private else 0o666  # 0o666 less the umask, as open() does
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    if private:
        os.chmod(temporary, 0o600)  # an older temporary file keeps its mode otherwise
    os.replace(temporary, path)
    if durable:
        fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """Flush ``path`` to disk; for a folder, the renames and new files in it (POSIX)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
