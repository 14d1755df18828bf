"""Virtual sites' site.toml files are valid TOML whatever the columns are called."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from common.config import load_site_config
from simulations.data.dataset import Dataset
from simulations.data.sites import write_site
from simulations.data.tables import load_table


def test_column_names_that_are_not_bare_keys_are_quoted(tmp_path):
    odd = "od280/od315_of_diluted_wines"
    frame = pl.DataFrame({odd: [1.0, 2.0, 3.0], 'say "hi"': ["a", "b", "a"], "class": [0, 1, 0]})
    dataset = Dataset(
        "wine",
        frame,
        "class",
        {odd: (0.0, 5.0)},
        categories={'say "hi"': ["a", "b"]},
    )
    config = load_site_config(write_site(tmp_path, 0, frame, dataset, 3.0, 1e-5))
    assert config.schema.columns[odd].max == 5.0
    assert config.schema.columns['say "hi"'].values == ["a", "b"]


def test_a_csv_dataset_keeps_its_decimal_comma_columns_as_features():
    messy = Path(__file__).resolve().parent.parent / "fixtures" / "messy.csv"  # read only
    dataset = load_table(messy, label="target")
    assert "alcohol" in dataset.ranges  # '12,29' among '11.69': a number column, not text
    assert dataset.frame["alcohol"].dtype == pl.Float64
    assert dataset.frame["alcohol"].null_count() == 0
