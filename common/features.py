"""The feature contract every site and the coordinator encode data with.

A :class:`FeatureSpec` names the model's input columns, the public range of each
(declared in the site schemas, never measured on rows) and the label classes. The
server merges the sites' declared specs into one and sends it with the training
config, so every site scales and orders its features identically.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import polars as pl

from common.errors import DataError


@dataclass(frozen=True)
class FeatureSpec:
    """Columns, their public ranges and the label classes of a federation.

    Parameters
    ----------
    features : list[str]
        Input columns, in the order the model expects them.
    lows, highs : list[float]
        Public range of each feature; values are clipped to it and mapped to [-1, 1].
    scales : list[str]
        Per feature, 'linear' or 'log' (log1p of the distance to the low end: for
        positive, right-skewed measurements). Empty means all linear.
    centers, spreads : list[float]
        Federation-wide mean and standard deviation of each feature on its unit
        scale (from the sites' DP-released moments); when given, features are
        standardised with them instead of mapped to [-1, 1]. Empty means unused.
    label : str
        Name of the label column.
    classes : list[str]
        Label values, in the order of the model's outputs.
    """

    features: list[str]
    lows: list[float]
    highs: list[float]
    label: str
    classes: list[str] = field(default_factory=list)
    scales: list[str] = field(default_factory=list)
    centers: list[float] = field(default_factory=list)
    spreads: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.features:
            raise DataError("feature spec has no features")
        if not (len(self.features) == len(self.lows) == len(self.highs)):
            raise DataError("feature spec: features, lows and highs differ in length")
        for name, low, high in zip(self.features, self.lows, self.highs):
            if not low < high:
                raise DataError(f"feature '{name}': range [{low}, {high}] is empty")
        if self.scales and len(self.scales) != len(self.features):
            raise DataError("feature spec: scales and features differ in length")
        if set(self.scales) - {"linear", "log"}:
            raise DataError(f"feature spec: unknown scales {set(self.scales) - {'linear', 'log'}}")
        if len(self.centers) != len(self.spreads) or (
            self.centers and len(self.centers) != len(self.features)
        ):
            raise DataError("feature spec: centers and spreads must match the features")
        if any(spread <= 0 for spread in self.spreads):
            raise DataError("feature spec: spreads must be > 0")
        if len(self.classes) < 2:
            raise DataError(f"label '{self.label}' needs at least two classes")

    @property
    def shape(self) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
        """What sites must agree on: the features, their order and scales, the label."""
        return tuple(self.features), self.label, tuple(self.scales)

    @property
    def num_features(self) -> int:
        return len(self.features)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        return cls(**json.loads(text))

    def scaled_features(self) -> list[pl.Expr]:
        """Expressions that clip each feature to its range and map it to [-1, 1].

        A feature named ``column=value`` is the one-hot indicator of a category.
        """
        units = self.unit_features()
        if self.centers:
            scaled = [
                ((unit - center) / spread).clip(-_MAX_Z, _MAX_Z)
                for unit, center, spread in zip(units, self.centers, self.spreads)
            ]
        else:
            scaled = [unit * 2 - 1 for unit in units]
        return [e.fill_nan(None).fill_null(0.0).alias(n) for e, n in zip(scaled, self.features)]

    def unit_features(self) -> list[pl.Expr]:
        """Each feature clipped to its range and mapped to [0, 1] (null stays null)."""
        scales = self.scales or ["linear"] * self.num_features
        return [
            _unit(_source(name).clip(low, high) - low, high - low, scale).alias(name)
            for name, low, high, scale in zip(self.features, self.lows, self.highs, scales)
        ]

    def with_moments(self, centers: list[float], spreads: list[float]) -> FeatureSpec:
        """This spec, standardising with federation-wide moments."""
        return replace(self, centers=list(centers), spreads=list(spreads))

    def encode(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return (features, label indices) as float32 / int64 arrays."""
        needed = [*{name.split(ONE_HOT, 1)[0] for name in self.features}, self.label]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"columns missing for the feature spec: {missing}")
        x = frame.select(self.scaled_features()).to_numpy().astype(np.float32)
        labels = frame.get_column(self.label).cast(pl.String)
        unknown = set(labels.unique().drop_nulls().to_list()) - set(self.classes)
        if unknown:
            raise DataError(f"label values not in the federation's classes: {unknown}")
        index = {c: i for i, c in enumerate(self.classes)}
        y = labels.replace_strict(index, return_dtype=pl.Int64).to_numpy()
        return x, y

    @classmethod
    def merge(cls, specs: list[FeatureSpec]) -> tuple[FeatureSpec, list[int]]:
        """Merge the sites' declared specs into the federation's.

        The federation takes the feature list and label most sites declare, the
        union of their ranges and of their classes. Returns the merged spec and the
        indices of the specs that disagree with it (schema mismatch).
        """
        if not specs:
            raise DataError("no site declared a feature spec")
        shapes = Counter(s.shape for s in specs)
        shape, _ = shapes.most_common(1)[0]
        features, label, scales = shape
        agreeing = [i for i, s in enumerate(specs) if s.shape == shape]
        chosen = [specs[i] for i in agreeing]
        lows = np.min([s.lows for s in chosen], axis=0).tolist()
        highs = np.max([s.highs for s in chosen], axis=0).tolist()
        classes = sorted({c for s in chosen for c in s.classes}, key=_natural_key)
        merged = cls(list(features), lows, highs, label, classes, list(scales))  # no moments yet
        return merged, [i for i in range(len(specs)) if i not in agreeing]


ONE_HOT = "="
# Standardised values beyond this many spreads are clipped: outliers stay bounded.
_MAX_Z = 5.0


def one_hot_names(column: str, values: list[str]) -> list[str]:
    """Feature names of a category's indicators, e.g. ``cp=1``."""
    return [f"{column}{ONE_HOT}{value}" for value in values]


def _source(name: str) -> pl.Expr:
    """The numeric input behind feature ``name`` (a column, or a category indicator)."""
    if ONE_HOT in name:
        column, value = name.split(ONE_HOT, 1)
        return (pl.col(column).cast(pl.String) == value).cast(pl.Float64)
    return pl.col(name).cast(pl.Float64)


def _unit(offset: pl.Expr, width: float, scale: str) -> pl.Expr:
    """Map ``offset`` in [0, width] to [0, 1], linearly or logarithmically."""
    if scale == "log":
        return offset.log1p() / np.log1p(width)
    return offset / width


def _natural_key(value: str) -> tuple[int, float | str]:
    """Sort numeric class names numerically ('2' before '10'), others by text."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)
