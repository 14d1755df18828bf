"""The data-quality profile of a site's latest clean version, with histograms.

One polars ``select`` computes every column's aggregates; the histograms are drawn
from the numeric columns' values (numpy, 20 bins) into ``<store>/reports/``, sealed
(``client.sealed_files``: ``fedlife-site open`` shows one). The
profile stays at the site: it is for the site's operator, not for the federation.

Per column the profile holds its declared type and role, the fraction of rows where
it is missing and its number of distinct present values. Besides:

* ``int`` / ``float``: min, max, mean, std (population, ``ddof=0``) and the
  quantiles 0.05 ... 0.95 (linear interpolation, as ``numpy.quantile``) of the finite
  values, and how many values are infinite. NaN counts as missing, as in ``ingest``.
* ``category`` / ``text`` / ``bool``: the 5 most frequent values with their counts
  (ties by value).
* ``datetime``: the earliest and latest value (ISO 8601).
* role ``pii`` or ``id``, or a column the schema does not declare: nothing else,
  neither values nor a histogram.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from client.sealed_files import plain_path, sheets, write_sealed
from client.site import Site
from client.store import ROW_ID
from common.config import ColumnSpec, ColumnType, Role
from common.errors import StoreError

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TOP_CATEGORIES = 5
HISTOGRAM_BINS = 20
HIDDEN_ROLES = frozenset({Role.PII, Role.ID})
_NUMERIC = frozenset({ColumnType.INT, ColumnType.FLOAT})
_CATEGORICAL = frozenset({ColumnType.CATEGORY, ColumnType.TEXT, ColumnType.BOOL})


def profile(site: Site) -> dict[str, Any]:
    """Profile the latest clean version of ``site`` and write its histograms.

    Returns a JSON-ready dict: ``site``, ``table``, ``version``, ``rows``,
    ``columns`` (name -> profile) and ``histograms`` (column -> PNG path).

    Raises
    ------
    DataError
        The site has no clean data yet (run ``fedlife-site prepare``).
    StoreError
        ``<store>/reports`` cannot be written.
    """
    frame, version = site.clean
    frame = frame.drop(ROW_ID, strict=False)  # an identifier, not data
    specs = site.config.schema.columns
    kinds = {name: _kind(frame.schema[name], specs.get(name)) for name in frame.columns}
    expressions = [
        e for i, name in enumerate(frame.columns) for e in _aggregates(i, name, kinds, frame)
    ]
    row = frame.select(expressions).row(0, named=True) if expressions else {}

    columns = {
        name: _column_profile(i, name, kinds[name], specs.get(name), frame, row)
        for i, name in enumerate(frame.columns)
    }
    numeric = [name for name in frame.columns if kinds[name] == "numeric"]
    histograms = _write_histograms(frame, numeric, site, version.version)
    return {
        "site": site.name,
        "table": "clean",
        "version": version.version,
        "rows": frame.height,
        "columns": columns,
        "histograms": {name: str(path) for name, path in histograms.items()},
    }


def _kind(dtype: pl.DataType, spec: ColumnSpec | None) -> str:
    """hidden | numeric | categorical | datetime | other, by the column's schema entry.

    A column the schema does not declare (pipeline bookkeeping) is treated like an
    id: its values are not shown.
    """
    if spec is None or spec.role in HIDDEN_ROLES:
        return "hidden"
    if spec.type in _NUMERIC and dtype.is_numeric():
        return "numeric"
    if spec.type in _CATEGORICAL:
        return "categorical"
    if spec.type is ColumnType.DATETIME and dtype.is_temporal():
        return "datetime"
    return "other"


def _present(name: str, kind: str) -> pl.Expr:
    """The column with every missing value (null, and NaN for numbers) as null."""
    column = pl.col(name)
    return column.cast(pl.Float64).fill_nan(None) if kind == "numeric" else column


def _aggregates(i: int, name: str, kinds: dict[str, str], frame: pl.DataFrame) -> list[pl.Expr]:
    kind = kinds[name]
    present = _present(name, kind)
    found = [
        present.null_count().alias(f"{i}.missing"),
        present.drop_nulls().n_unique().alias(f"{i}.distinct"),
    ]
    if kind == "numeric":
        finite = pl.when(present.is_finite()).then(present)
        # integers keep their type for min/max; floats are bounded by their finite values
        bounds = pl.col(name) if frame.schema[name].is_integer() else finite
        found += [
            present.is_infinite().sum().alias(f"{i}.infinite"),
            bounds.min().alias(f"{i}.min"),
            bounds.max().alias(f"{i}.max"),
            finite.mean().alias(f"{i}.mean"),
            finite.std(ddof=0).alias(f"{i}.std"),
            *(finite.quantile(q, interpolation="linear").alias(f"{i}.q{q}") for q in QUANTILES),
        ]
    elif kind == "categorical":
        counts = present.cast(pl.String).drop_nulls().alias("value").value_counts(name="n")
        top = counts.sort_by(
            [counts.struct.field("n"), counts.struct.field("value")], descending=[True, False]
        )
        found.append(top.head(TOP_CATEGORIES).implode().alias(f"{i}.top"))
    elif kind == "datetime":
        found += [present.min().alias(f"{i}.min"), present.max().alias(f"{i}.max")]
    return found


def _column_profile(
    i: int, name: str, kind: str, spec: ColumnSpec | None, frame: pl.DataFrame, row: dict
) -> dict[str, Any]:
    rows = frame.height
    found: dict[str, Any] = {
        "type": str(spec.type) if spec is not None else str(frame.schema[name]),
        "role": str(spec.role) if spec is not None else None,
        "missing_fraction": row[f"{i}.missing"] / rows if rows else 0.0,
        "distinct": row[f"{i}.distinct"],
    }
    if kind == "numeric":
        found["infinite"] = row[f"{i}.infinite"]
        for stat in ("min", "max", "mean", "std"):
            found[stat] = _finite(row[f"{i}.{stat}"])
        found["quantiles"] = {str(q): _finite(row[f"{i}.q{q}"]) for q in QUANTILES}
    elif kind == "categorical":
        found["top"] = [{"value": e["value"], "count": e["n"]} for e in row[f"{i}.top"]]
    elif kind == "datetime":
        for stat in ("min", "max"):
            value = row[f"{i}.{stat}"]
            found[stat] = None if value is None else value.isoformat()
    return found


def _finite(value: Any) -> int | float | None:
    """``value`` as a JSON-safe number: ints stay ints, NaN and infinities become None."""
    if isinstance(value, int) or value is None:
        return value
    return float(value) if math.isfinite(value) else None


def _write_histograms(
    frame: pl.DataFrame, numeric: list[str], site: Site, version: int
) -> dict[str, Path]:
    """One ``hist-<column>.png.sealed`` per numeric column with finite values (sealed:
    ``client.sealed_files``; ``fedlife-site open`` shows one); stale ones go."""
    reports = site.config.store_dir / "reports"
    written: dict[str, Path] = {}
    try:
        reports.mkdir(parents=True, exist_ok=True)
        for name in numeric:
            values = frame.get_column(name).cast(pl.Float64).drop_nulls().to_numpy()
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            taken = {plain_path(p).name for p in written.values()}
            png = _plot_histogram(values, name, f"{site.name}, clean v{version}")
            path = write_sealed(site.config.store_dir, reports / _file_name(name, taken), png)
            written[name] = path
        for stale in set(sheets(reports, "hist-*.png")) - set(written.values()):
            stale.unlink()
    except OSError as error:
        raise StoreError(f"{reports}: cannot write the histograms ({error.strerror})") from None
    return written


def _file_name(column: str, taken: set[str]) -> str:
    """``hist-<column>.png``, with characters unsafe in file names replaced by '_'."""
    stem = "hist-" + re.sub(r"[^A-Za-z0-9._-]", "_", column)
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    return name


def _plot_histogram(values: np.ndarray, column: str, subtitle: str) -> bytes:
    """The PNG of ``values``' histogram (in memory: it reaches the disk only sealed)."""
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.stairs(counts, edges, fill=True, alpha=0.8)
    axes.set(xlabel=column, ylabel="rows", title=f"{column} ({subtitle}, {values.size} values)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
