"""A partner site as the ClientApp sees it: its config, store, ledger and data."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from client.labeling.labels import labeled_rows
from client.pipeline.pipeline import feature_columns
from client.pipeline.prepare import GateFailure, gate_failures
from client.privacy.ledger import PrivacyLedger
from client.privacy.randomness import NoiseSource
from client.privacy.subjects import subject_column, subject_ids
from client.store import CLEAN, LABELED, UNLABELED, SiteStore, TableVersion
from common.config import ColumnType, SiteConfig, load_site_config, missing_indicator_name
from common.errors import DataError
from common.features import FeatureSpec, one_hot_names

# Entries this process keeps (site configs; rows, gates and arrays derived from data).
_CACHE_SIZE = 256


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_config(path: str, modified_ns: int, size: int) -> SiteConfig:
    return load_site_config(path)


_REMEMBERED: OrderedDict[tuple, object] = OrderedDict()


def _remember(key: tuple, compute: Callable[[], object]) -> object:
    """``compute()``, kept for ``key`` in this process (least recently used goes first).

    A ClientApp process answers many messages (rounds, evaluations) for the same
    sites; what a message derives from committed Delta versions (clean or labeled
    rows, gate, encoded arrays) is the same until a version or the config changes,
    and both are in every key, so a store rebuilt at the same path is read afresh.
    """
    if key in _REMEMBERED:
        _REMEMBERED.move_to_end(key)
        return _REMEMBERED[key]
    value = compute()
    _REMEMBERED[key] = value
    if len(_REMEMBERED) > _CACHE_SIZE:
        _REMEMBERED.popitem(last=False)
    return value


@dataclass(frozen=True)
class SiteData:
    """A site's encoded rows, split into train and local test parts."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    table_version: int
    groups_train: pl.DataFrame = field(default_factory=pl.DataFrame)
    groups_test: pl.DataFrame = field(default_factory=pl.DataFrame)
    subjects_train: np.ndarray | None = None  # each training row's subject, with an id column


class Site:
    """One site: ``site.toml`` plus everything under its store directory.

    Parameters
    ----------
    config : the validated site config.
    """

    def __init__(self, config: SiteConfig) -> None:
        self.config = config
        self.store = SiteStore(config.store_dir)
        self.ledger = PrivacyLedger(config.store_dir, config.privacy.accountant)

    @cached_property
    def noise(self) -> NoiseSource:
        """Where this site's DP noise and Poisson sampling come from (never the server)."""
        privacy = self.config.privacy
        return NoiseSource.of_store(self.config.store_dir, reproducible=privacy.reproducible_noise)

    @classmethod
    def from_path(cls, path: str | Path) -> Site:
        """The site of ``site.toml`` at ``path``, parsed once per process and edit."""
        try:
            status = os.stat(path)
        except OSError:
            return cls(load_site_config(path))  # let the loader say what is wrong
        resolved = str(Path(path).resolve())
        return cls(_cached_config(resolved, status.st_mtime_ns, status.st_size))

    @property
    def name(self) -> str:
        return self.config.site.name

    @cached_property
    def clean(self) -> tuple[pl.DataFrame, TableVersion]:
        """The labeled clean rows that training uses, and the clean version."""
        version, key = self._versions
        # Without labels given at the site, labeled_rows is the clean version itself.
        rows = _remember(
            ("rows", *key), lambda: labeled_rows(self.store, self.config, version.version)
        )
        return rows, version

    @cached_property
    def labeled_version(self) -> TableVersion | None:
        """The latest version of the labels given at the site (None: none given)."""
        return self.store.latest(LABELED)

    @cached_property
    def _versions(self) -> tuple[TableVersion, tuple]:
        """The latest clean version, and the key of what this process derives from it.

        The key holds what the rows training uses depend on: the clean, labeled and
        unlabeled tables' versions and the config.
        """
        version = self.store.latest(CLEAN)
        if version is None:
            raise DataError(f"site '{self.name}' has no clean data yet: run fedlife-site prepare")
        labeled = self.labeled_version
        unlabeled = None if labeled is None else self.store.latest(UNLABELED)
        key = (
            str(self.store.root.resolve()),
            version.version,
            json.dumps(version.lineage, sort_keys=True),
            -1 if labeled is None else labeled.version,
            -1 if unlabeled is None else unlabeled.version,
            self.config.model_dump_json(),
        )
        return version, key

    def gate_failures(self) -> list[GateFailure]:
        """The gate on the latest clean version, missing shares as prepare measured them."""
        frame, version = self.clean
        missing = json.loads(version.lineage.get("missing", "{}"))
        key = ("gate", *self._versions[1])
        return list(_remember(key, lambda: gate_failures(frame, self.config, missing)))

    def gate_reasons(self) -> list[str]:
        """Why the gate fails, with counts: for the site's operator."""
        return [failure.detail for failure in self.gate_failures()]

    def released_gate_reasons(self) -> list[str]:
        """Why the gate fails, as the federation hears it: which rule, never how many rows."""
        return [failure.rule for failure in self.gate_failures()]

    def declared_spec(self) -> FeatureSpec:
        """The feature contract this site's schema declares (no row is measured).

        Numeric features come with their declared range (and a 0/1 missing
        indicator where the schema asks for one); a category feature becomes one
        indicator per declared value.
        """
        schema = self.config.schema
        numeric = set(feature_columns(self.config))
        names, lows, highs, scales = [], [], [], []
        for column in schema.features:
            spec = schema.columns[column]
            if spec.type is ColumnType.CATEGORY and spec.values:
                indicators = one_hot_names(column, [str(v) for v in spec.values])
                names += indicators
                lows += [0.0] * len(indicators)
                highs += [1.0] * len(indicators)
                scales += ["linear"] * len(indicators)
            elif column in numeric:
                if None in (spec.min, spec.max):
                    raise DataError(
                        f"site '{self.name}': feature '{column}' has no declared min/max"
                    )
                names.append(column)
                lows.append(spec.min)
                highs.append(spec.max)
                scales.append(spec.scale)
                if spec.missing_indicator:
                    names.append(missing_indicator_name(column))
                    lows.append(0.0)
                    highs.append(1.0)
                    scales.append("linear")
        classes = schema.columns[schema.label].values
        if not classes:
            # Measured classes would tell the federation which labels this site holds.
            raise DataError(
                f"site '{self.name}': label '{schema.label}' declares no values; list the "
                f"classes in [schema.columns.{schema.label}] values"
            )
        return FeatureSpec(names, lows, highs, schema.label, [str(c) for c in classes], scales)

    def data(self, spec: FeatureSpec, seed: int) -> SiteData:
        """Encode the latest clean version with ``spec``; split off the local test part."""
        key = ("data", spec.to_json(), seed, *self._versions[1])
        return _remember(key, lambda: self._encoded(spec, seed))

    def _encoded(self, spec: FeatureSpec, seed: int) -> SiteData:
        frame, version = self.clean
        x, y = spec.encode(frame)
        order = np.random.default_rng(seed).permutation(len(y))
        held_out = self.config.training.held_out(private=self.config.privacy.enabled)
        n_test = int(round(len(y) * held_out))
        test, train = order[:n_test], order[n_test:]
        groups = frame.select(pl.col(self.config.schema.sensitive).cast(pl.String))
        if groups.width == 0:
            groups = pl.DataFrame({"_": [None] * len(y)}).drop("_")  # no column, but the rows
        column = subject_column(self.config)
        subjects = None if column is None else subject_ids(frame, column)
        return SiteData(
            x[train],
            y[train],
            x[test],
            y[test],
            version.version,
            groups[train],
            groups[test],
            None if subjects is None else subjects[train],
        )
