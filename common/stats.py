"""Statistics that merge across sites: counts, sums, sums of squares, min/max, categories.

A site computes :func:`table_stats` over its clean rows, passes them through
:func:`common.disclosure.suppress_small_groups` and sends ``TableStats.to_json()``
(a string, so it fits a Flower ``ConfigRecord``); the server merges the sites' stats with
:meth:`TableStats.merge` into federation-wide means, spreads and vocabularies.

Exactness
    Counts are integers and min/max are floats, so merging them is exact. Sums and
    sums of squares are kept as exact rationals (:class:`fractions.Fraction`; every
    float is one), so ``merge`` is exactly associative and commutative: the server's
    result is bit-identical whatever order the sites answer in. Only a site's own
    sums, computed by polars in float64, carry rounding. ``mean`` and ``variance``
    are computed exactly from the sums and rounded once. The variance comes from
    ``n * sum_sq - sum**2``, so when ``|mean|`` is much larger than ``std`` the
    rounding of a site's ``sum_sq`` dominates (relative error about
    ``1e-16 * mean**2 / variance``).

Missing values
    Nulls and float NaN are both counted as missing (``nulls``), as ``ingest`` does;
    ``count`` is the number of present values. Infinite values are refused
    (:class:`DataError`): a sum over them means nothing.

Small groups
    What of these statistics may leave a site is decided in :mod:`common.disclosure`.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import polars as pl

from common.errors import DataError

OTHER = "__other__"
"""The category that small categories are folded into; reserved in the data."""

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        raise DataError(f"{what} must be >= 0, got {value}")
    return int(value)


def _exact(value: Any, what: str) -> Fraction:
    """``value`` as an exact rational: a Fraction, int, finite float or 'p/q' string."""
    if isinstance(value, bool):
        raise DataError(f"{what} must be a number, got {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise DataError(f"{what} must be finite, got {value}")
        return Fraction(float(value))
    if isinstance(value, str):
        try:
            return Fraction(value)
        except (ValueError, ZeroDivisionError):
            raise DataError(f"{what} is not a number: {value!r}") from None
    raise DataError(f"{what} must be a number, got {value!r}")


def _bound(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise DataError(f"{what} must be finite, got {value}")
    # -0.0 == 0.0, yet min/max keep whichever comes first: adding 0.0 makes it 0.0, so
    # merged bounds are bit-identical in any order.
    return float(value) + 0.0


def _fields(data: Any, kind: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise DataError(f"{kind} stats must be an object, got {type(data).__name__}")
    keys = set(data) - {"kind"}
    missing, unknown = required - keys, keys - required - optional
    if missing or unknown:
        raise DataError(
            f"{kind} stats: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}"
        )
    if data.get("kind", kind) != kind:
        raise DataError(f"expected {kind} stats, got kind {data.get('kind')!r}")
    return {k: data[k] for k in keys}


@dataclass(frozen=True)
class ColumnStats:
    """Mergeable statistics of one numeric column.

    Parameters
    ----------
    count : present (non-missing) values.
    nulls : missing values (null or NaN).
    sum, sum_sq : sum and sum of squares of the present values, kept exact
        (:class:`~fractions.Fraction`); ints, finite floats and ``'p/q'`` strings are
        accepted.
    min, max : smallest and largest present value; ``None`` exactly when ``count == 0``.
    """

    count: int
    nulls: int = 0
    sum: Fraction = Fraction(0)
    sum_sq: Fraction = Fraction(0)
    min: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "count", _count(self.count, "count"))
        set_(self, "nulls", _count(self.nulls, "nulls"))
        set_(self, "sum", _exact(self.sum, "sum"))
        set_(self, "sum_sq", _exact(self.sum_sq, "sum_sq"))
        set_(self, "min", _bound(self.min, "min"))
        set_(self, "max", _bound(self.max, "max"))
        if self.sum_sq < 0:
            raise DataError(f"sum_sq must be >= 0, got {float(self.sum_sq)}")
        if self.count == 0:
            if self.min is not None or self.max is not None or self.sum or self.sum_sq:
                raise DataError("stats of zero values must have sum 0 and no min/max")
        elif self.min is None or self.max is None:
            raise DataError(f"stats of {self.count} values need a min and a max")
        elif self.min > self.max:
            raise DataError(f"min ({self.min}) must not exceed max ({self.max})")

    @property
    def mean(self) -> float | None:
        """Mean of the present values; ``None`` when there are none."""
        return float(self.sum / self.count) if self.count else None

    @property
    def variance(self) -> float | None:
        """Population variance of the present values; ``None`` when there are none."""
        if not self.count:
            return None
        spread = self.count * self.sum_sq - self.sum * self.sum
        return float(max(spread, Fraction(0)) / (self.count * self.count))

    @property
    def std(self) -> float | None:
        """Population standard deviation; ``None`` when there are no values."""
        variance = self.variance
        return None if variance is None else math.sqrt(variance)

    def merge(self, other: ColumnStats) -> ColumnStats:
        """Stats of both sets of rows together (exact, associative, commutative)."""
        if not isinstance(other, ColumnStats):
            raise DataError(f"cannot merge numeric stats with {type(other).__name__}")
        lows = [v for v in (self.min, other.min) if v is not None]
        highs = [v for v in (self.max, other.max) if v is not None]
        return ColumnStats(
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            sum=self.sum + other.sum,
            sum_sq=self.sum_sq + other.sum_sq,
            min=min(lows) if lows else None,
            max=max(highs) if highs else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the sums as exact ``'p/q'`` strings, min/max as floats."""
        return {
            "kind": NUMERIC,
            "count": self.count,
            "nulls": self.nulls,
            "sum": str(self.sum),
            "sum_sq": str(self.sum_sq),
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnStats:
        fields = _fields(data, NUMERIC, {"count"}, {"nulls", "sum", "sum_sq", "min", "max"})
        return cls(**fields)


@dataclass(frozen=True)
class CategoryStats:
    """Mergeable statistics of one categorical column: rows per category.

    Parameters
    ----------
    counts : category (its text form) -> number of rows; stored read-only, by name.
    nulls : rows where the column is missing.
    """

    counts: Mapping[str, int] = field(default_factory=dict)
    nulls: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.counts, Mapping):
            raise DataError(f"counts must map category -> count, got {self.counts!r}")
        checked = {}
        for name in sorted(self.counts, key=lambda k: (not isinstance(k, str), str(k))):
            if not isinstance(name, str):
                raise DataError(f"category names must be strings, got {name!r}")
            checked[name] = _count(self.counts[name], f"count of category {name!r}")
        object.__setattr__(self, "counts", MappingProxyType(checked))
        object.__setattr__(self, "nulls", _count(self.nulls, "nulls"))

    @property
    def total(self) -> int:
        """Rows with a present value."""
        return sum(self.counts.values())

    def merge(self, other: CategoryStats) -> CategoryStats:
        """Counts of both sets of rows together (exact, associative, commutative)."""
        if not isinstance(other, CategoryStats):
            raise DataError(f"cannot merge categorical stats with {type(other).__name__}")
        counts = dict(self.counts)
        for name, n in other.counts.items():
            counts[name] = counts.get(name, 0) + n
        return CategoryStats(counts, self.nulls + other.nulls)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CATEGORICAL, "counts": dict(self.counts), "nulls": self.nulls}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoryStats:
        fields = _fields(data, CATEGORICAL, {"counts"}, {"nulls"})
        return cls(**fields)


AnyStats = ColumnStats | CategoryStats
_KINDS: dict[str, type[ColumnStats] | type[CategoryStats]] = {
    NUMERIC: ColumnStats,
    CATEGORICAL: CategoryStats,
}


@dataclass(frozen=True)
class TableStats:
    """Mergeable statistics of a table: its row count and stats per column.

    A merged table may hold columns that only some sites sent, so a column's
    present plus missing values may be fewer than ``n_rows``, never more.
    """

    n_rows: int
    columns: Mapping[str, AnyStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_rows", _count(self.n_rows, "n_rows"))
        if not isinstance(self.columns, Mapping):
            raise DataError(f"columns must map name -> stats, got {self.columns!r}")
        for name, stats in self.columns.items():
            if not isinstance(name, str) or not isinstance(stats, ColumnStats | CategoryStats):
                raise DataError(f"column {name!r}: expected ColumnStats or CategoryStats")
            covered = (stats.count if isinstance(stats, ColumnStats) else stats.total) + stats.nulls
            if covered > self.n_rows:
                raise DataError(f"column {name!r} covers {covered} rows of only {self.n_rows}")
        object.__setattr__(self, "columns", MappingProxyType(dict(sorted(self.columns.items()))))

    def merge(self, other: TableStats) -> TableStats:
        """Both tables' rows together; a column only one side has is kept as it is."""
        if not isinstance(other, TableStats):
            raise DataError(f"cannot merge table stats with {type(other).__name__}")
        columns = dict(self.columns)
        for name, stats in other.columns.items():
            mine = columns.get(name)
            if mine is not None and type(mine) is not type(stats):
                raise DataError(f"column {name!r} is numeric on one side, categorical on the other")
            # Both sides have the same type (checked above).
            columns[name] = stats if mine is None else mine.merge(stats)  # type: ignore[arg-type]
        return TableStats(self.n_rows + other.n_rows, columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "columns": {name: stats.to_dict() for name, stats in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableStats:
        if not isinstance(data, Mapping) or set(data) != {"n_rows", "columns"}:
            raise DataError("table stats must be an object with keys 'n_rows' and 'columns'")
        if not isinstance(data["columns"], Mapping):
            raise DataError("table stats: 'columns' must be an object")
        columns = {}
        for name, stats in data["columns"].items():
            kind = stats.get("kind") if isinstance(stats, Mapping) else None
            if kind not in _KINDS:
                raise DataError(f"column {name!r}: unknown stats kind {kind!r}")
            columns[name] = _KINDS[kind].from_dict(stats)
        return cls(data["n_rows"], columns)

    def to_json(self) -> str:
        """One compact JSON string, e.g. for a Flower ``ConfigRecord`` value."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> TableStats:
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as error:
            raise DataError(f"table stats are not valid JSON ({error})") from None
        return cls.from_dict(data)


def table_stats(frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> TableStats:
    """Stats of ``frame``'s ``numeric`` and ``categorical`` columns, in one polars select.

    Numeric columns (ints, floats, booleans as 0/1) get :class:`ColumnStats`, NaN
    counted as missing; categorical columns get :class:`CategoryStats` keyed by each
    value's text form (``true``, ``3``, ...).

    Raises
    ------
    DataError
        A column is missing or named twice, a numeric column is not numeric, holds an
        infinite value, or a categorical column holds the reserved value ``'__other__'``.
    """
    named = [*numeric, *categorical]
    absent = [c for c in named if c not in frame.columns]
    if absent:
        raise DataError(f"columns {absent} are not in the table")
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        raise DataError(f"columns {twice} are named more than once")
    not_numeric = [
        c for c in numeric if not (frame.schema[c].is_numeric() or frame.schema[c] == pl.Boolean)
    ]
    if not_numeric:
        raise DataError(f"columns {not_numeric} are not numeric")

    expressions = [pl.len().alias("n_rows")]
    for i, name in enumerate(numeric):
        value = pl.col(name).cast(pl.Float64).fill_nan(None)
        expressions += [
            value.count().alias(f"{i}.count"),
            value.null_count().alias(f"{i}.nulls"),
            value.sum().alias(f"{i}.sum"),
            (value * value).sum().alias(f"{i}.sum_sq"),
            value.min().alias(f"{i}.min"),
            value.max().alias(f"{i}.max"),
            value.is_infinite().sum().alias(f"{i}.infinite"),
        ]
    for i, name in enumerate(categorical):
        text = pl.col(name).cast(pl.String)
        expressions += [
            text.null_count().alias(f"c{i}.nulls"),
            text.drop_nulls().alias("value").value_counts(name="n").implode().alias(f"c{i}.counts"),
        ]
    row = frame.select(expressions).row(0, named=True)

    columns: dict[str, AnyStats] = {}
    for i, name in enumerate(numeric):
        if row[f"{i}.infinite"]:
            raise DataError(f"column {name!r} holds {row[f'{i}.infinite']} infinite value(s)")
        columns[name] = ColumnStats(
            count=row[f"{i}.count"],
            nulls=row[f"{i}.nulls"],
            # __post_init__ makes ints and floats exact Fractions.
            sum=row[f"{i}.sum"] if row[f"{i}.count"] else 0,  # type: ignore[arg-type]
            sum_sq=row[f"{i}.sum_sq"] if row[f"{i}.count"] else 0,  # type: ignore[arg-type]
            min=row[f"{i}.min"],
            max=row[f"{i}.max"],
        )
    for i, name in enumerate(categorical):
        counts = {entry["value"]: entry["n"] for entry in row[f"c{i}.counts"]}
        if OTHER in counts:
            raise DataError(f"column {name!r} holds the reserved category {OTHER!r}")
        columns[name] = CategoryStats(counts, row[f"c{i}.nulls"])
    return TableStats(row["n_rows"], columns)
