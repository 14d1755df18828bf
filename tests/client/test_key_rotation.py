"""``fedlife-site rotate-key``: every sealed file re-sealed under a new sealing key;
a rotation stopped half-way leaves every file readable and is finished by the next."""

from __future__ import annotations

import json
import shutil
import stat

import polars as pl
import pytest
from typer.testing import CliRunner

import client.retention.rotate as rotate
from client.cli import app
from client.privacy.pseudonyms import site_key
from client.retention import backup as backup_module
from client.retention.backup import backup
from client.retention.restore import restore
from client.retention.retain import ARCHIVE_PURPOSE, site_archive
from client.retention.rotate import rotate_sealing_key
from client.sealed_files import PURPOSE, context, read_file, write_sealed
from client.sealing import derive_key, read_sealed
from client.sealing_keys import STATE, generations, key_path
from client.site_audit import site_audit
from common.config import load_site_config
from common.errors import KeyRotationError, SealError
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site

SHEET = b"row_id,label\nP17-pseudonym,\n"
ROWS = pl.DataFrame({"age": [61.5, 70.0]})


def make_site(tmp_path, extra: str = ""):
    dataset = breast_cancer()
    path = write_site(tmp_path / "site", 0, dataset.frame[:40], dataset, 3.0, 1e-5)
    path.write_text(path.read_text() + extra)
    config = load_site_config(path)
    store = config.store_dir
    files = [write_sealed(store, store / "labeling" / f"queue-v{i}.csv", SHEET) for i in range(2)]
    files.append(write_sealed(store, store / "reports" / "hist-age.png", b"\x89PNG"))
    archive = site_archive(config)
    files += [archive.write("clean", ROWS), archive.write("labeled", ROWS)]
    return path, config, files


def readable(config, files) -> bool:
    archive = site_archive(config)
    for path in files:
        if path.name.endswith(".parquet.sealed"):
            assert archive.read(path).equals(ROWS)
        else:
            assert read_file(config.store_dir, path) in (SHEET, b"\x89PNG")
    return True


def test_rotation_reseals_every_file_and_retires_the_old_key(tmp_path):
    path, config, files = make_site(tmp_path)
    store = config.store_dir
    hmac_key = site_key(store)
    old = derive_key(hmac_key, PURPOSE)
    assert read_sealed(old, files[0], context(files[0].name)) == SHEET

    done = rotate_sealing_key(config)

    assert (done.generation, done.retired, done.resealed) == (1, [0], len(files))
    assert generations(store) == (1, [])
    assert stat.S_IMODE(key_path(store, 1).stat().st_mode) == 0o600
    assert site_key(store) == hmac_key  # the pseudonym key is not touched
    assert readable(config, files)
    with pytest.raises(SealError):  # the site key no longer opens a sheet ...
        read_sealed(old, files[0], context(files[0].name))
    archive_old = derive_key(hmac_key, ARCHIVE_PURPOSE)
    with pytest.raises(SealError):  # ... nor an archive file
        read_sealed(archive_old, files[-1], site_archive(config).context(files[-1]))
    assert site_audit(config).entries()[-1]["action"] == "rotate-key"

    again = rotate_sealing_key(config)
    assert (again.generation, again.retired, again.resealed) == (2, [1], len(files))
    assert not key_path(store, 1).exists() and key_path(store, 2).exists()
    assert readable(config, files)


def test_a_rotation_stopped_half_way_leaves_every_file_readable_and_is_finished(
    tmp_path, monkeypatch
):
    path, config, files = make_site(tmp_path)
    store = config.store_dir
    sealed = []

    def crash_after_two(key, source, target, context):
        if len(sealed) == 2:
            raise OSError(28, "No space left on device")
        sealed.append(target)
        return real_seal(key, source, target, context)

    real_seal = rotate.seal_file
    monkeypatch.setattr(rotate, "seal_file", crash_after_two)
    with pytest.raises(OSError):
        rotate_sealing_key(config)
    monkeypatch.undo()

    assert generations(store) == (1, [0])  # both generations held
    assert readable(config, files)  # two files under the new key, the rest under the old
    newer = write_sealed(store, store / "labeling" / "queue-v9.csv", SHEET)  # new: new key
    assert read_sealed(
        derive_key(key_path(store, 1).read_bytes(), PURPOSE), newer, context(newer.name)
    )

    done = rotate_sealing_key(config)  # finishes that rotation, starts none
    assert (done.generation, done.retired) == (1, [0])
    assert done.resealed == len(files) - 2 and done.already_current == 3
    assert generations(store) == (1, [])
    assert readable(config, [*files, newer])


def test_a_file_no_key_opens_stops_the_rotation_and_loses_nothing(tmp_path):
    path, config, files = make_site(tmp_path)
    altered = bytearray(files[1].read_bytes())
    altered[-2] ^= 1
    files[1].write_bytes(bytes(altered))
    with pytest.raises(KeyRotationError, match="queue-v1.csv.sealed: opens under no key"):
        rotate_sealing_key(config)
    assert generations(config.store_dir) == (1, [0])
    assert readable(config, [f for f in files if f != files[1]])


def test_a_missing_archive_folder_and_the_pseudonym_key_are_refused_in_one_line(tmp_path):
    path, config, files = make_site(tmp_path, '\n[retention]\narchive_dir = "../offsite"\n')
    site_archive(config).root.rename(tmp_path / "unmounted")
    runner = CliRunner()
    for args, needle in (
        ([], "archive folder not found"),
        (["--pseudonym-key"], "cannot be rotated in place"),
    ):
        result = runner.invoke(app, ["rotate-key", "-c", str(path), *args])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not (config.store_dir / STATE).exists()  # nothing changed
    (tmp_path / "unmounted").rename(site_archive(config).root)
    result = runner.invoke(app, ["rotate-key", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resealed"] == len(files)
    assert readable(config, files)


def test_a_backup_taken_after_a_rotation_restores_files_that_open(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_module, "SCRYPT_N", 2**10)  # the cost is not under test
    path, config, files = make_site(tmp_path)
    rotate_sealing_key(config)
    backup(config, tmp_path / "backups", "a passphrase")
    shutil.rmtree(config.store_dir)
    restore(config, tmp_path / "backups", "a passphrase")
    assert generations(config.store_dir) == (1, [])
    assert readable(config, files)
