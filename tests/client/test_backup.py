"""fedlife-site backup / restore: sealed, incremental snapshots whose restore never
brings back an erased subject or spent budget (issue 23)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from client.cli import main
from client.pipeline.prepare import prepare
from client.privacy.ledger import LedgerEntry, PrivacyLedger
from client.privacy.pseudonyms import pseudonym, site_key
from client.retention import backup as backup_module
from client.retention.backup import OBJECTS, SNAPSHOTS, backup, snapshot_names
from client.retention.restore import restore
from client.retention.retain import retain
from client.store import SiteStore
from common.config import load_site_config
from common.errors import (
    BackupError,
    BackupKeyError,
    BackupSiteError,
    BackupTamperedError,
    RestoreTargetError,
)
from tests.client.subject_sites import subject_id, subject_name, write_subject_site
from tests.client.test_retention import (
    holds_subject,
    make_site,
    request_erasure,
    run_cli,
    store_holds,
)

PASSPHRASE = "correct horse battery staple"
DELTA = 1e-5


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch):
    """scrypt at 2**17 costs 128 MiB and ~0.4 s per key; the tests need no such cost."""
    monkeypatch.setattr(backup_module, "SCRYPT_N", 2**10)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("backup"))


@pytest.fixture
def site(prepared, tmp_path):
    """A copy of the prepared site: (path of site.toml, its config)."""
    shutil.copytree(prepared[1].base_dir, tmp_path / "site")
    path = tmp_path / "site" / "site.toml"
    return path, load_site_config(path)


def spend(config, round_: int) -> float:
    ledger = PrivacyLedger(config.store_dir)
    ledger.record(
        LedgerEntry(
            noise_multiplier=1.0,
            sample_rate=0.1,
            steps=20,
            delta=DELTA,
            run_id="r",
            round=round_,
            table_version=0,
        )
    )
    return PrivacyLedger(config.store_dir).epsilon(DELTA)


def test_restore_after_a_lost_store_keeps_later_erasures_and_spent_budget(site, tmp_path):
    """The must-hold sequence: backup, erase a subject, spend more, lose the store,
    restore: the subject is in no file and epsilon spent is the one before the loss."""
    path, config = site
    target = tmp_path / "backups"
    quality = config.quality.model_copy(update={"min_rows": 6})
    prepare(config.model_copy(update={"quality": quality}))  # a superseded clean version
    spend(config, 1)
    erased = subject_id(0, 3)
    assert holds_subject(config, erased)  # the search can fail (it finds the pseudonym)
    backup(config, target, PASSPHRASE)
    request_erasure(config, [erased])
    retain(config, expire=False)
    before_loss = spend(config, 2)
    assert holds_subject(config, erased) == []

    shutil.rmtree(config.store_dir)
    report = restore(config, target, PASSPHRASE)

    assert holds_subject(config, erased) == []
    assert report.erasures_reapplied == 1 and report.rows_erased > 0
    assert report.ledger == "registry" and report.releases == 2
    assert PrivacyLedger(config.store_dir).epsilon(DELTA) == pytest.approx(before_loss)
    assert SiteStore(config.store_dir).read("clean").height > 0
    code, out, err = run_cli("verify", "-c", path)
    assert code == 0, err
    assert oct(config.store_dir.stat().st_mode & 0o777) == "0o700"
    assert all(
        p.stat().st_mode & 0o777 == 0o600 for p in config.store_dir.rglob("*") if p.is_file()
    )


def test_backups_hold_no_plaintext_id_or_name(site, tmp_path):
    _, config = site
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    stored = pseudonym(site_key(config.store_dir), subject_id(0, 5))
    assert store_holds(config.store_dir, stored)  # the search can fail
    for needle in (subject_id(0, 5), stored, subject_name(0, 5)):
        assert store_holds(target, needle) == [], needle


def test_a_second_backup_copies_only_what_changed(site, tmp_path):
    _, config = site
    target = tmp_path / "backups"
    first = backup(config, target, PASSPHRASE)
    objects = {p.name for p in (target / OBJECTS).iterdir()}
    assert first.copied == len(objects) > 5
    second = backup(config, target, PASSPHRASE)
    # Only what the first backup itself changed: the audit log, its head, the list of
    # backup folders; no table file.
    assert second.copied <= 3 < second.files
    assert len(list((target / OBJECTS).iterdir())) == len(objects) + second.copied
    keys = backup_module.open_keys(target, "site-000", PASSPHRASE)
    files = backup_module.read_snapshot(target, keys, second.snapshot)["files"]
    copied = {e["path"] for e in files if e["object"] not in objects}
    assert copied and not any(p.startswith("tables/") for p in copied), copied
    assert len(snapshot_names(target)) == 2


def test_restore_at_a_time_picks_the_snapshot_taken_then(site, tmp_path):
    _, config = site
    target = tmp_path / "backups"
    first = backup(config, target, PASSPHRASE)
    spend(config, 1)
    backup(config, target, PASSPHRASE)
    shutil.rmtree(config.store_dir)
    when = backup_module.snapshot_time(first.snapshot)
    report = restore(config, target, PASSPHRASE, at=when)
    assert report.snapshot == first.snapshot
    # The ledger beside the backups is later than that snapshot's: it wins.
    assert report.ledger == "registry" and report.releases == 1


def test_old_snapshots_are_pruned_with_the_objects_only_they_used(site, tmp_path):
    path, config = site
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    text = path.read_text().replace("[retention]", "[retention]\nbackup_max_age_days = 0")
    path.write_text(text)
    config = load_site_config(path)
    request_erasure(config, [subject_id(0, 4)])
    retain(config, expire=False)  # the clean table is rewritten: its old file is unused
    report = backup(config, target, PASSPHRASE)
    assert len(report.pruned) == 1 and snapshot_names(target) == [report.snapshot]
    snapshot = backup_module.read_snapshot(
        target, backup_module.open_keys(target, "site-000", PASSPHRASE), report.snapshot
    )
    assert {p.name for p in (target / OBJECTS).iterdir()} == {
        e["object"] for e in snapshot["files"]
    }


def _flip(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("part", ["object", "snapshot"])
def test_a_tampered_backup_is_refused_and_nothing_is_written(site, tmp_path, part):
    _, config = site
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    if part == "object":
        _flip(max((target / OBJECTS).iterdir(), key=lambda p: p.stat().st_size))
    else:
        _flip(next((target / SNAPSHOTS).iterdir()))
    shutil.rmtree(config.store_dir)
    with pytest.raises(BackupTamperedError, match="refused"):
        restore(config, target, PASSPHRASE)
    assert not config.store_dir.exists()
    assert [p.name for p in config.store_dir.parent.iterdir() if "restoring" in p.name] == []


def test_bad_restores_end_in_one_line_and_overwrite_nothing(site, tmp_path):
    path, config = site
    target = tmp_path / "backups"
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    code, out, err = run_cli("backup", "-c", path, "--to", target, "--passphrase-file", secret)
    assert code == 0 and "snapshot" in out, err
    audit = (config.store_dir / "audit" / "audit.jsonl").read_bytes()

    def refused(*args, config_path=path):
        code, out, err = run_cli("restore", "-c", config_path, "--from", target, *args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (out, err)
        return err

    assert "not empty" in refused("--passphrase-file", secret)  # the live store
    assert (config.store_dir / "audit" / "audit.jsonl").read_bytes() == audit
    shutil.rmtree(config.store_dir)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase")
    assert "wrong passphrase" in refused("--passphrase-file", wrong)
    assert "not found" in refused("--passphrase-file", tmp_path / "missing")
    other = load_site_config(write_subject_site(tmp_path / "other", 1, rows=10))
    other_path = other.base_dir / "site.toml"
    assert "site-000" in refused("--passphrase-file", secret, config_path=other_path)
    assert not config.store_dir.exists() and not other.store_dir.exists()
    code, out, err = run_cli(
        "restore", "-c", path, "--from", target, "--passphrase-file", secret, "--json"
    )
    assert code == 0 and json.loads(out)["files"] > 5, err


def test_error_types_of_the_refusals(site, tmp_path):
    _, config = site
    with pytest.raises(BackupError, match="not a fedlife backup folder"):
        backup(config, config.base_dir, PASSPHRASE)  # the site's own folder
    with pytest.raises(BackupError, match="inside the store"):
        backup(config, config.store_dir / "b", PASSPHRASE)
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    with pytest.raises(RestoreTargetError):
        restore(config, target, PASSPHRASE)
    shutil.rmtree(config.store_dir)
    with pytest.raises(BackupKeyError):
        restore(config, target, "nope")
    other = load_site_config(write_subject_site(tmp_path / "other", 1, rows=10))
    with pytest.raises(BackupSiteError):
        restore(other, target, PASSPHRASE)


def test_a_removed_backup_folder_is_not_made_again_by_an_erasure(site, tmp_path):
    _, config = site
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    shutil.rmtree(target)
    request_erasure(config, [subject_id(0, 6)])
    spend(config, 1)
    assert not target.exists()


def _console_script(monkeypatch, *args) -> int:
    """``fedlife-site ARGS`` through its entry point, in this process; the umask it sets
    is put back after."""
    umask = os.umask(0o022)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["fedlife-site", *map(str, args)])
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        os.umask(umask)
    return int(exited.value.code or 0)


def test_the_site_commands_make_the_store_owner_only(monkeypatch, tmp_path):
    """Folders 0700 and files 0600 under the store and the archive, from the first
    prepare on: the console script sets the umask."""
    path = write_subject_site(tmp_path, 0, rows=20)
    assert _console_script(monkeypatch, "prepare", "-c", path) == 0
    path.write_text(path.read_text().replace("[retention]", "[retention]\nmax_age_days = 0"))
    assert _console_script(monkeypatch, "retain", "-c", path) == 0  # writes the archive
    store = load_site_config(path).store_dir
    assert list((store / "archive").rglob("*.sealed"))
    modes = {p: p.stat().st_mode & 0o777 for p in [store, *store.rglob("*")]}
    wrong = {str(p): oct(m) for p, m in modes.items() if m != (0o700 if p.is_dir() else 0o600)}
    assert wrong == {}


def test_an_edited_ledger_beside_the_backups_is_refused(site, tmp_path):
    """A registry ledger further on than the snapshot's is kept only if its chain holds:
    a lowered noise multiplier there would return budget."""
    _, config = site
    target = tmp_path / "backups"
    backup(config, target, PASSPHRASE)
    spend(config, 1)
    ledger = target / "registry" / "privacy" / "ledger.jsonl"
    ledger.write_text(
        ledger.read_text().replace('"noise_multiplier": 1.0', '"noise_multiplier": 9.0')
    )
    assert '"noise_multiplier": 9.0' in ledger.read_text()
    shutil.rmtree(config.store_dir)
    with pytest.raises(BackupTamperedError, match="ledger kept beside the backups is damaged"):
        restore(config, target, PASSPHRASE)
    assert not config.store_dir.exists()
