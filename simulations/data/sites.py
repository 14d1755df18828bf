"""Materialise virtual sites: each gets raw files and a site.toml, like a real site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from client.pipeline.prepare import prepare
from client.privacy.randomness import site_secret
from common.config import load_site_config
from common.toml_text import toml_key, toml_value
from simulations.data.datasets import Dataset


def site_name(index: int) -> str:
    return f"site-{index:03d}"


def write_site(
    root: Path,
    index: int,
    rows: pl.DataFrame,
    dataset: Dataset,
    epsilon: float | None,
    delta: float,
    test_fraction: float | None = None,
    *,
    reproducible_seed: int | None = None,
) -> Path:
    """Write ``root/site-NNN/raw/data.csv``, its ``site.toml`` and its DP secret.

    Like a real site, a virtual one draws its DP secret from the OS, so not even the
    simulation's seed predicts its noise; ``reproducible_seed`` derives the secret from
    that seed instead and turns off the fresh draw per release (research runs that
    must repeat bit for bit). Returns the toml path.
    """
    name = site_name(index)
    site_dir = root / name
    (site_dir / "raw").mkdir(parents=True, exist_ok=True)
    rows.select(dataset.site_columns).write_csv(site_dir / "raw" / "data.csv", null_value="NA")
    path = site_dir / "site.toml"
    reproducible = reproducible_seed is not None
    path.write_text(
        site_toml(name, dataset, epsilon, delta, test_fraction, reproducible=reproducible)
    )
    derive_from = f"{reproducible_seed}:{name}" if reproducible else None
    site_secret(site_dir / "store", derive_from=derive_from)
    return path


def site_toml(
    name: str,
    dataset: Dataset,
    epsilon: float | None,
    delta: float,
    test_fraction: float | None,
    *,
    reproducible: bool = False,
) -> str:
    """A commented site.toml for a virtual site of ``dataset``."""
    privacy = (
        f"enabled = true\nepsilon_budget = {epsilon!r}\ndelta = {delta!r}"
        if epsilon is not None
        else "enabled = false  # simulation without DP: epsilon is unbounded"
    )
    if reproducible:
        privacy += "\nreproducible_noise = true  # fedlife-sim --reproducible: noise from the seed"
    held_out = (
        "# test_fraction unset: 0.1 held out for evaluation while privacy is on"
        if test_fraction is None
        else f"test_fraction = {test_fraction!r}"
    )
    columns = "\n".join(
        f'[schema.columns.{toml_key(n)}]\ntype = "float"\nrole = "feature"\n'
        f"min = {lo!r}\nmax = {hi!r}\n"
        f'scale = "{dataset.scales.get(n, "linear")}"\n'
        for n, (lo, hi) in dataset.ranges.items()
    )
    for role, columns_of in (("feature", dataset.categories), ("sensitive", dataset.sensitive)):
        columns += "".join(
            f'\n[schema.columns.{toml_key(n)}]\ntype = "category"\nrole = "{role}"\n'
            f"values = {toml_value(values)}\n"
            for n, values in columns_of.items()
        )
    labels = dataset.frame[dataset.label]
    classes = toml_value(sorted(labels.drop_nulls().unique().cast(str)))
    label_type = "int" if labels.dtype.is_integer() else "category"
    return f"""# Virtual site of a fedlife simulation ({dataset.name}).
[site]
name = "{name}"
raw = "raw"        # a file, a glob or a directory of CSV / Parquet files
store = "store"    # Delta tables, privacy ledger

[schema]
missing = ["", "NA"]

[schema.columns.{toml_key(dataset.label)}]
type = "{label_type}"
role = "label"
values = {classes}

# Feature ranges are public: the dataset's documentation lists them.
{columns}
[cleaning]
dedupe = true
impute = "center"  # missing values take the federation's DP mean at training
outliers = "clip"  # clip to the declared range

[quality]
min_rows = 10
min_classes = 1  # under label skew a site may hold one class; its rows still teach

[privacy]
{privacy}

[training]
{held_out}
"""


def prepare_site(site_toml: str | Path) -> dict[str, Any]:
    """Run a virtual site's own ``prepare`` and say what its pipeline found (counts only).

    Runs as a per-site Ray task (``simulations.site_jobs.run_per_site``).
    """
    result = prepare(load_site_config(site_toml))
    report = result.report
    return {
        "rows_read": report.rows_read,
        "rows_rejected": report.rows_rejected,
        "duplicates_dropped": report.duplicates_dropped,
        "unlabeled_dropped": report.unlabeled_dropped,
        "values_imputed": sum(report.imputed.values()),
        "values_clipped": sum(report.clipped.values()),
        "rows_clean": report.rows_clean,
        "gate": "pass" if result.gate_passed else "; ".join(result.gate_reasons),
    }
