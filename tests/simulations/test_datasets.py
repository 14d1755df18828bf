"""Datasets of ``fedlife-sim``: bundled digits, researchers' CSV/Parquet files and folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from opacus import PrivacyEngine
from opacus.validators import ModuleValidator
from torch.utils.data import DataLoader, TensorDataset

from common.errors import ConfigError
from common.models import build_model
from simulations.data.datasets import load_dataset
from simulations.data.heart_disease import find_data_dir
from simulations.data.sites import site_toml


def table(n: int = 60, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "patient_id": np.arange(n),
            "age": rng.integers(20, 90, n),
            "chol": rng.uniform(100, 400, n).round(1),
            "ward": rng.choice(["a", "b", "c"], n),
            "outcome": rng.integers(0, 2, n),
        }
    )


@pytest.mark.parametrize(
    ("name", "loader"), [("breast_cancer", "load_breast_cancer"), ("digits", "load_digits")]
)
def test_bundled_tables_equal_scikit_learns_own_loaders(name, loader):
    """Read from scikit-learn's files without importing it: the same rows, names, labels."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    dataset = load_dataset(name)

    features = dataset.frame.drop(dataset.label)
    assert np.array_equal(features.to_numpy(), bunch.data)
    assert np.array_equal(dataset.frame[dataset.label].to_numpy(), bunch.target)
    if name == "breast_cancer":
        assert features.columns == [n.replace(" ", "_") for n in bunch.feature_names]


def test_digits_is_8x8_pixels_with_the_cnn():
    digits = load_dataset("digits")

    assert digits.model == "cnn"
    assert len(digits.features) == 64
    assert set(digits.ranges.values()) == {(0.0, 16.0)}
    assert digits.frame[digits.label].n_unique() == 10
    assert digits.frame.select(digits.features).max().max_horizontal().item() <= 16


def test_the_cnn_is_valid_for_opacus_and_takes_a_private_step():
    model = build_model("cnn", 64, 10)
    assert ModuleValidator.validate(model, strict=False) == []
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    private, optimizer, loader = PrivacyEngine().make_private(
        module=model,
        optimizer=optimizer,
        data_loader=DataLoader(TensorDataset(x, y), batch_size=8),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
    )
    before = [p.detach().clone() for p in model.parameters()]
    for features, labels in loader:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(private(features), labels).backward()
        optimizer.step()
        break
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_cnn_rejects_a_non_square_input():
    with pytest.raises(ConfigError, match="square"):
        build_model("cnn", 30, 2)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_table_guesses_its_label_and_keeps_numeric_and_category_features(tmp_path, suffix):
    path = tmp_path / f"study{suffix}"
    frame = table()
    frame.write_csv(path) if suffix == ".csv" else frame.write_parquet(path)

    data = load_dataset(f"csv:{path}")

    assert data.label == "outcome"
    assert set(data.ranges) == {"age", "chol"}  # the id is not a feature
    assert data.categories == {"ward": ["a", "b", "c"]}
    assert data.ranges["age"] == (float(frame["age"].min()), float(frame["age"].max()))
    toml = site_toml("site-000", data, 3.0, 1e-5, 0.0)
    assert '[schema.columns.ward]\ntype = "category"' in toml
    assert "patient_id" not in toml


def test_the_label_option_overrides_the_guess(tmp_path):
    path = tmp_path / "study.csv"
    table().rename({"outcome": "result"}).write_csv(path)

    assert load_dataset(f"csv:{path}", label="result").label == "result"
    with pytest.raises(ConfigError, match="no label column 'nope'"):
        load_dataset(f"csv:{path}", label="nope")


def test_a_table_without_a_label_column_is_a_config_error(tmp_path):
    path = tmp_path / "nolabel.csv"
    table().drop("outcome").write_csv(path)

    with pytest.raises(ConfigError, match="no label column"):
        load_dataset(f"csv:{path}")


@pytest.mark.parametrize("name", ["csv:/no/such/file.csv", "dir:/no/such/folder", "nosuch"])
def test_a_missing_dataset_is_a_config_error(name):
    with pytest.raises(ConfigError):
        load_dataset(name)


def test_a_folder_is_a_natural_split_by_file(tmp_path):
    for index, name in enumerate(["north", "south", "west"]):
        table(20 + 10 * index, seed=index).write_csv(tmp_path / f"{name}.csv")

    data = load_dataset(f"dir:{tmp_path}")

    assert data.natural == "source_file"
    counts = dict(data.frame.group_by("source_file").len().iter_rows())
    assert counts == {"north": 20, "south": 30, "west": 40}
    assert "source_file" not in data.site_columns


@pytest.mark.skipif(find_data_dir() is None, reason="needs ../shared/datasets/uci_heart_disease")
def test_heart_disease_preset_has_four_hospitals_and_binary_label():
    heart = load_dataset("heart_disease")

    assert heart.natural == "hospital"
    assert heart.frame["hospital"].n_unique() == 4
    assert sorted(heart.frame["num"].unique().to_list()) == [0, 1]
    assert heart.frame["chol"].min() > 0  # hidden zeros are missing, not 0 mg/dl
    assert Path(find_data_dir()).is_dir()
