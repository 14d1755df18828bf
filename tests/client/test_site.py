"""A site's declared feature contract and its training data."""

from __future__ import annotations

import pytest

from client.pipeline.prepare import prepare
from client.privacy.pseudonyms import pseudonym, site_key
from client.site import Site
from common.config import load_site_config
from common.errors import ConfigError, DataError

SITE = """
[site]
name = "a"
raw = "data.csv"
[schema.columns.patient]
type = "int"
role = "id"
[schema.columns.name]
type = "text"
role = "pii"
[schema.columns.cp]
type = "category"
values = ["1", "2", "3"]
[schema.columns.chol]
type = "float"
min = 100
max = 600
scale = "log"
[schema.columns.num]
type = "int"
role = "label"
values = ["0", "1"]
[training]
test_fraction = 0.25
[quality]
min_rows = 2
"""


def make(tmp_path, schema=SITE):
    rows = "\n".join(f"{i},p{i},{1 + i % 3},{200 + i},{i % 2}" for i in range(12))
    (tmp_path / "data.csv").write_text("patient,name,cp,chol,num\n" + rows + "\n")
    (tmp_path / "site.toml").write_text(schema)
    config = load_site_config(tmp_path / "site.toml")
    prepare(config)
    return Site(config)


def test_declared_spec_one_hots_categories_and_leaves_out_id_and_pii(tmp_path):
    spec = make(tmp_path).declared_spec()

    assert spec.features == ["cp=1", "cp=2", "cp=3", "chol"]
    assert spec.lows == [0.0, 0.0, 0.0, 100.0]
    assert spec.highs == [1.0, 1.0, 1.0, 600.0]
    assert spec.scales == ["linear", "linear", "linear", "log"]
    assert spec.classes == ["0", "1"]


def test_data_splits_off_the_local_test_part(tmp_path):
    site = make(tmp_path)
    data = site.data(site.declared_spec(), seed=0)

    assert len(data.y_train) == 9 and len(data.y_test) == 3
    assert data.x_train.shape[1] == 4
    assert data.table_version == 0


def test_feature_without_declared_range_is_refused(tmp_path):
    site = make(tmp_path, SITE.replace("min = 100\nmax = 600\n", ""))
    with pytest.raises(DataError, match="chol"):
        site.declared_spec()


def test_missing_indicator_marks_the_rows_imputation_filled(tmp_path):
    schema = SITE.replace(
        'scale = "log"\n', 'scale = "log"\nmissing = ["0"]\nmissing_indicator = true\n'
    )
    rows = [f"{i},p{i},{1 + i % 3},{0 if i < 4 else 200 + i},{i % 2}" for i in range(12)]
    (tmp_path / "data.csv").write_text("patient,name,cp,chol,num\n" + "\n".join(rows) + "\n")
    (tmp_path / "site.toml").write_text(schema)
    config = load_site_config(tmp_path / "site.toml")
    prepare(config)
    site = Site(config)
    spec = site.declared_spec()

    assert spec.features == ["cp=1", "cp=2", "cp=3", "chol", "chol_missing"]
    frame, _ = site.clean
    assert frame.get_column("chol").null_count() == 4  # left for the federation's center ...
    by_patient = dict(zip(frame.get_column("patient"), frame.get_column("chol_missing")))
    key = site_key(config.store_dir)  # the store holds ids as pseudonyms
    assert [by_patient[pseudonym(key, i)] for i in range(12)] == [1] * 4 + [0] * 8  # ... known
    data = site.data(spec, seed=0)
    assert data.x_train.shape[1] == 5
    assert sorted(set(data.x_train[:, 4]) | set(data.x_test[:, 4])) == [-1.0, 1.0]


def test_missing_indicator_may_not_shadow_a_column(tmp_path):
    schema = SITE.replace('scale = "log"\n', 'scale = "log"\nmissing_indicator = true\n')
    schema += '[schema.columns.chol_missing]\ntype = "int"\n'
    (tmp_path / "site.toml").write_text(schema)
    with pytest.raises(ConfigError, match="chol_missing"):
        load_site_config(tmp_path / "site.toml")


def test_a_new_clean_version_or_config_edit_is_seen_by_the_next_message(tmp_path):
    """A ClientApp process remembers encoded data per version: a change must show."""
    site = make(tmp_path)
    spec = site.declared_spec()
    first = Site.from_path(tmp_path / "site.toml").data(spec, seed=0)
    assert Site.from_path(tmp_path / "site.toml").data(spec, seed=0) is first  # remembered

    rows = "\n".join(f"{i},p{i},{1 + i % 3},{300 + i},{i % 2}" for i in range(16))
    (tmp_path / "data.csv").write_text("patient,name,cp,chol,num\n" + rows + "\n")
    prepare(load_site_config(tmp_path / "site.toml"))
    second = Site.from_path(tmp_path / "site.toml").data(spec, seed=0)
    assert second.table_version == 1
    assert len(second.y_train) + len(second.y_test) == 16

    (tmp_path / "site.toml").write_text(SITE.replace("test_fraction = 0.25", "test_fraction = 0.5"))
    third = Site.from_path(tmp_path / "site.toml").data(spec, seed=0)
    assert len(third.y_test) == 8
