"""A file written with write_atomically holds its old content or its new, never a part."""

from __future__ import annotations

import os
import stat

import pytest

from common.atomic_files import TEMPORARY_SUFFIX, write_atomically


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_new_content_replaces_the_old_whole(tmp_path):
    path = tmp_path / "state.json"
    write_atomically(path, '{"round": 1}')
    write_atomically(path, b'{"round": 2}', durable=True)
    assert path.read_text() == '{"round": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_write_that_fails_midway_leaves_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "heads.json"
    write_atomically(path, "old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        write_atomically(path, "new")
    assert path.read_text() == "old"


def test_private_files_are_owner_only_whatever_the_umask_or_a_stale_temporary(tmp_path):
    path = tmp_path / "secret.key"
    stale = tmp_path / ("secret.key" + TEMPORARY_SUFFIX)  # left by a killed write
    stale.write_bytes(b"partial")
    stale.chmod(0o644)
    old_umask = os.umask(0)
    try:
        write_atomically(path, b"key", private=True)
        write_atomically(tmp_path / "report.json", "{}")
    finally:
        os.umask(old_umask)
    assert path.read_bytes() == b"key" and mode(path) == 0o600
    assert mode(tmp_path / "report.json") == 0o666  # not private: the umask decides
    assert not stale.exists()
