"""Each Delta data file's sha256 is recorded at its commit and checked before reads."""

from __future__ import annotations

import json
import shutil

import pytest

from client.integrity import MANIFEST, check_table, data_files
from client.pipeline.prepare import prepare
from client.retention.retain import retain
from client.site import Site
from client.store import CLEAN, TABLES, SiteStore
from common.config import load_site_config
from common.errors import IntegrityError
from tests.privacy.conftest import make_site


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from simulations.data.datasets import breast_cancer

    return make_site(tmp_path_factory.mktemp("integrity"), breast_cancer())


@pytest.fixture
def site(prepared, tmp_path) -> Site:
    copy = tmp_path / "site"
    shutil.copytree(prepared.config.base_dir, copy, symlinks=True)
    return Site.from_path(copy / "site.toml")


def _flip_one_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_data_file_of_every_table_has_its_checksum(site):
    store = SiteStore(site.config.store_dir)
    tables = [t for t in TABLES if store.latest(t) is not None]
    assert CLEAN in tables
    for table in tables:
        manifest = json.loads((store.table_path(table) / MANIFEST).read_text())
        files = data_files(store.table_path(table))
        assert {f.name for f in files} <= set(manifest)
        assert check_table(store.table_path(table)) == len(files)


def test_a_flipped_byte_is_named_by_verify_and_refused_by_prepare_and_retain(
    site, cli, assert_one_line_error
):
    toml = site.config.base_dir / "site.toml"
    assert cli("fedlife-site", "verify", "-c", toml).returncode == 0
    clean = data_files(SiteStore(site.config.store_dir).table_path(CLEAN))[0]
    _flip_one_byte(clean)

    assert_one_line_error(cli("fedlife-site", "verify", "-c", toml), clean.name, "checksum")
    assert_one_line_error(cli("fedlife-site", "prepare", "-c", toml), clean.name)
    with pytest.raises(IntegrityError, match=clean.name):
        retain(load_site_config(toml))
    with pytest.raises(IntegrityError, match=clean.name):
        prepare(load_site_config(toml))


def test_a_missing_data_file_is_named(site):
    table = SiteStore(site.config.store_dir).table_path(CLEAN)
    gone = data_files(table)[0]
    gone.unlink()
    with pytest.raises(IntegrityError, match=f"{gone.name}: data file is missing"):
        check_table(table)


def test_a_table_written_before_checksums_is_reported_unchecked(site, cli):
    store = SiteStore(site.config.store_dir)
    for table in TABLES:
        (store.table_path(table) / MANIFEST).unlink(missing_ok=True)
    assert check_table(store.table_path(CLEAN)) == -1
    result = cli("fedlife-site", "verify", "-c", site.config.base_dir / "site.toml")
    assert result.returncode == 0 and "no checksums recorded yet" in result.stdout
