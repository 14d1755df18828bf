"""The type every dataset loader returns: a labelled table and its public metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from common.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """A labelled table and its public metadata.

    Parameters
    ----------
    name : the dataset's name.
    frame : features and label, one row per example (other columns may ride along,
        e.g. the one a natural partition splits by; sites never receive them).
    label : the label column.
    ranges : public (min, max) of each numeric feature, from the dataset's documentation.
    scales : features best scaled logarithmically ('log'); the rest are linear.
    categories : category features and their declared values.
    model : the architecture of ``common.models`` that suits the data.
    natural : the column a ``natural`` partition splits by when none is named
        (e.g. each row's source file or hospital); None = no natural split.
    run_defaults : run-config keys that suit the data (e.g. a CNN's learning rate);
        the simulation's own options override them.
    sensitive : columns with role ``sensitive`` (not model inputs) and their values.
    """

    name: str
    frame: pl.DataFrame
    label: str
    ranges: dict[str, tuple[float, float]]
    scales: dict[str, str] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    model: str = "logreg"
    natural: str | None = None
    run_defaults: dict[str, float] = field(default_factory=dict)
    sensitive: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in self.frame.columns:
            raise ConfigError(f"dataset '{self.name}': no label column '{self.label}'")
        if self.frame[self.label].drop_nulls().n_unique() < 2:
            raise ConfigError(f"dataset '{self.name}': label '{self.label}' has < 2 classes")
        if not self.ranges and not self.categories:
            raise ConfigError(f"dataset '{self.name}': no numeric or category feature")

    @property
    def features(self) -> list[str]:
        """The numeric features (the ones dirt can shift or blank)."""
        return list(self.ranges)

    @property
    def site_columns(self) -> list[str]:
        """What a site's raw file holds: features, sensitive columns and the label."""
        return [*self.ranges, *self.categories, *self.sensitive, self.label]

    def renamed(self, old: str, new: str) -> Dataset:
        """This dataset with feature ``old`` called ``new`` (schema drift at a site)."""
        rename = {old: new}
        return Dataset(
            self.name,
            self.frame.rename(rename),
            self.label,
            {rename.get(n, n): r for n, r in self.ranges.items()},
            {rename.get(n, n): s for n, s in self.scales.items()},
            {rename.get(n, n): v for n, v in self.categories.items()},
            self.model,
            self.natural,
            self.run_defaults,
            self.sensitive,
        )
