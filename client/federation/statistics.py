"""What a site tells the federation about its data: histograms and a quality summary.

Only aggregates leave: histograms of the latest clean version and of the version
before it (drift), binned on the federation's edges (:mod:`common.histograms`) and
passed through the small-group rule of :mod:`common.disclosure`; and counts from
``prepare``'s lineage (rows read, rejected, missing shares), each released only
where it and its complement are 0 or at least ``min_group_size`` rows.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from deltalake.exceptions import DeltaError

from client.labeling.labels import labeled_rows
from client.site import Site
from common.disclosure import releasable, suppress_small_groups
from common.errors import DataError
from common.features import FeatureSpec
from common.histograms import histogram_columns
from common.stats import table_stats


def site_statistics(site: Site, spec: FeatureSpec) -> dict[str, Any]:
    """Histograms of the current and previous clean versions, and the quality summary.

    Returns a JSON-ready dict: ``version``, ``histograms`` (TableStats JSON, or None
    when the table is below ``min_group_size``), ``previous_version`` and
    ``previous_histograms`` (None without an earlier version) and ``quality``.
    """
    frame, version = site.clean
    k = site.config.quality.min_group_size
    parent = version.lineage.get("parent_version", "")
    previous = _previous_rows(site, int(parent)) if parent else None
    return {
        "version": version.version,
        "histograms": _histograms(frame, spec, k),
        "previous_version": None if previous is None else int(parent),
        "previous_histograms": None if previous is None else _histograms(previous, spec, k),
        "quality": _quality(version.lineage, frame.height, k, site.gate_reasons()),
    }


def _previous_rows(site: Site, version: int) -> pl.DataFrame | None:
    """The rows training used at clean ``version``; None once retention dropped it."""
    try:
        return labeled_rows(site.store, site.config, version)
    except (DeltaError, OSError, pl.exceptions.PolarsError):
        return None


def _histograms(frame: pl.DataFrame, spec: FeatureSpec, k: int) -> str | None:
    binned = frame.select(histogram_columns(spec))
    try:
        return suppress_small_groups(table_stats(binned, [], list(binned.columns)), k).to_json()
    except DataError:
        return None  # fewer than k rows: nothing may leave


def _quality(lineage: dict[str, str], rows: int, k: int, gate: list[str]) -> dict[str, Any]:
    """Counts from prepare's lineage that pass the small-group rule (others: None)."""
    read = int(lineage.get("rows_read", 0) or 0)
    rejected = sum(json.loads(lineage.get("rejected", "{}") or "{}").values())
    missing = json.loads(lineage.get("missing", "{}") or "{}")
    valid = read - rejected
    return {
        "rows_clean": rows if releasable(rows, 0, k) else None,
        "rows_read": read if releasable(read, 0, k) else None,
        "rows_rejected": rejected if releasable(rejected, valid, k) else None,
        "missing_fraction": {
            column: share if _share_releasable(share, valid, k) else None
            for column, share in missing.items()
        },
        "missing_cells_fraction": _cells_share(missing, valid, k),
        "gate": "pass" if not gate else "; ".join(gate),
    }


def _share_releasable(share: float, total: int, k: int) -> bool:
    missing = round(share * total)
    return releasable(missing, total - missing, k)


def _cells_share(missing: dict[str, float], rows: int, k: int) -> float | None:
    """Share of all feature cells that were missing, if that count may leave."""
    cells = rows * len(missing)
    count = round(sum(share * rows for share in missing.values()))
    return count / cells if cells and releasable(count, cells - count, k) else None
