"""A truncated commit in ``_delta_log``: status names the last readable version, repair
rolls the table back to it (no data file deleted, the audit log records it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.pipeline.prepare import prepare
from client.retention.retain import retain
from client.site_audit import site_audit
from client.store import SiteStore
from client.store_repair import BACKUP_DIR, repair_table, table_damage
from common.config import load_site_config
from common.errors import StoreError
from tests.client.subject_sites import subject_id
from tests.client.test_retention import ERASED, request_erasure, store_holds
from tests.client.test_retention import make_site as retention_site
from tests.client.test_site_cli import ROWS, csv_text, site_toml


def _commit(table: Path, version: int) -> Path:
    return table / "_delta_log" / f"{version:020d}.json"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def broken(grown_site: Path) -> Path:
    """A site prepared twice (clean v0 and v1) whose clean v1 commit is cut in half."""
    assert prepare(load_site_config(grown_site)).clean.version == 1
    _truncate(_commit(grown_site.parent / "store" / "tables" / "clean", 1))
    return grown_site


def _data_files(store: Path) -> set[Path]:
    return {p for p in (store / "tables").rglob("*.parquet") if "_delta_log" not in p.parts}


def test_the_damage_names_the_last_readable_version(broken):
    store = SiteStore(broken.parent / "store")
    damage = table_damage(store, "clean")
    assert damage is not None
    assert (damage.latest_logged, damage.last_readable, damage.readable_rows) == (1, 0, ROWS)
    assert "version 1 unreadable" in damage.describe()
    assert "last readable version 0" in damage.describe()
    assert table_damage(store, "raw") is None
    assert table_damage(store, "labeled") is None  # absent, not damaged


def test_status_shows_the_last_readable_version_and_the_repair_command(
    cli, assert_one_line_error, broken
):
    result = cli("fedlife-site", "status", "-c", broken, "--json")

    line = assert_one_line_error(result, "table 'clean'", "last readable version 0")
    assert f"fedlife-site repair -c {broken}" in line
    status = json.loads(result.stdout)
    assert status["tables"]["clean"]["version"] == 0
    assert status["tables"]["clean"]["rows"] == ROWS
    assert "damaged" in status["tables"]["clean"]
    assert status["tables"]["raw"] == {"version": 1, "rows": ROWS + 2 + 2}

    table = cli("fedlife-site", "status", "-c", broken)
    assert table.returncode == StoreError.exit_code
    assert "0 (damaged)" in table.stdout, table.stdout


def test_repair_rolls_back_keeps_data_and_is_audited(cli, broken):
    store_dir = broken.parent / "store"
    clean = store_dir / "tables" / "clean"
    files = _data_files(store_dir)
    cut = _commit(clean, 1).read_bytes()

    result = cli("fedlife-site", "repair", "-c", broken)

    assert result.returncode == 0, result.stderr
    assert "clean: rolled back to version 0" in result.stdout, result.stdout
    store = SiteStore(store_dir)
    assert store.latest("clean").version == 0
    assert store.read("clean").height == ROWS
    assert _data_files(store_dir) == files  # not one data file deleted
    backups = list((store_dir / BACKUP_DIR).rglob("*.json"))
    assert [b.read_bytes() for b in backups] == [cut]
    entry = site_audit(load_site_config(broken)).entries()[-1]
    assert entry["action"] == "repair"
    assert entry["fields"]["table"] == "clean"
    assert entry["fields"]["rolled_back_to"] == 0
    assert entry["fields"]["removed_versions"] == [1]
    assert site_audit(load_site_config(broken)).verify() is None

    again = cli("fedlife-site", "repair", "-c", broken)
    assert again.returncode == 0 and "nothing to repair" in again.stdout
    # The rolled-back clean version no longer matches raw's: the next prepare makes one.
    result = prepare(load_site_config(broken))
    assert result.clean.version == 1 and not result.unchanged
    assert store.read("clean").height == ROWS + 2


def test_a_table_with_no_readable_version_is_not_repaired(tmp_path):
    (tmp_path / "data.csv").write_text(csv_text())
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    prepare(load_site_config(config))
    _truncate(_commit(tmp_path / "store" / "tables" / "clean", 0))
    damage = table_damage(SiteStore(tmp_path / "store"), "clean")
    assert damage is not None and damage.last_readable is None

    with pytest.raises(StoreError, match="no version of table 'clean' is readable"):
        repair_table(damage, tmp_path / "backup")
    assert _commit(tmp_path / "store" / "tables" / "clean", 0).exists()


def test_erasure_removes_the_commits_repair_moved_aside(tmp_path):
    """A moved-aside commit's statistics may hold a subject's values: erasure drops them."""
    path, config = retention_site(tmp_path)
    quality = config.quality.model_copy(update={"min_rows": 6})
    prepare(config.model_copy(update={"quality": quality}))  # clean v1
    _truncate(_commit(config.store_dir / "tables" / "clean", 1))
    damage = table_damage(SiteStore(config.store_dir), "clean")
    assert damage is not None
    repair_table(damage, config.store_dir / BACKUP_DIR / "now")
    assert list((config.store_dir / BACKUP_DIR).rglob("*.json"))
    subjects = [subject_id(0, i) for i in ERASED]
    request_erasure(config, subjects)

    retain(config)

    assert not (config.store_dir / BACKUP_DIR).exists()
    for subject in subjects:
        assert store_holds(config.store_dir, subject) == [], subject
