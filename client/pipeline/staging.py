"""The out-of-core route's stage: a folder beside the store, and the ones killed prepares left."""

from __future__ import annotations

import os
import shutil
import tempfile

from common.config import SiteConfig


def stage(config: SiteConfig) -> tempfile.TemporaryDirectory:
    """An empty folder for the stage, removed on exit: beside the store (room like
    the tables'), not in /tmp. Stages a killed prepare left (its process is gone) are
    removed first: they may hold gigabytes."""
    store = config.store_dir
    store.mkdir(parents=True, exist_ok=True)
    for left in store.glob(".stage-*-*"):
        owner = left.name.split("-")[1]
        if owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(left, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f".stage-{os.getpid()}-", dir=store)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
