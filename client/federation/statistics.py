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
from client.privacy.released_histograms import ReleasedHistograms, differences_releasable
from client.site import Site
from client.store import ROW_ID
from common.disclosure import releasable, suppress_small_groups
from common.errors import DataError
from common.features import FeatureSpec
from common.histograms import histogram_columns
from common.stats import TableStats, table_stats


def site_statistics(site: Site, spec: FeatureSpec) -> dict[str, Any]:
    """Histograms of the current and previous clean versions, and the quality summary.

    The previous histograms are the latest the site released before this version with
    this binning (first time: the previous version's); a current version whose
    difference from any earlier release would expose fewer than ``min_group_size`` rows
    is not released: the latest earlier release is sent again as the current one, with
    no previous.

    Returns a JSON-ready dict: ``version``, ``histograms`` (TableStats JSON, or None
    when the table is below ``min_group_size``), ``previous_version`` and
    ``previous_histograms`` (None without an earlier version) and ``quality``.
    """
    frame, version = site.clean
    k = site.config.quality.min_group_size
    parent = version.lineage.get("parent_version", "")
    previous = _previous_rows(site, int(parent)) if parent else None
    released = ReleasedHistograms(site.config.store_dir, spec.to_json())
    versions = released.versions()
    earlier = {v: text for v, text in versions.items() if v < version.version}
    if not versions and previous is not None:  # the first release: the parent's, then
        earlier = {int(parent): _histograms(previous, spec, k)}
    last = (max(earlier), earlier[max(earlier)]) if earlier else None
    current = (version.version, versions.get(version.version))
    if current[1] is None:
        current = (version.version, _histograms(frame, spec, k))
        follows = (_can_follow(site, frame, current[1], v, old, spec) for v, old in earlier.items())
        if not all(follows):
            # Too few rows changed since an earlier release: send the latest again.
            current, last = last, None
    for kept in (current, last):
        if kept is not None and kept[1] is not None:
            released.keep(*kept)
    return {
        "version": current[0],
        "histograms": current[1],
        "previous_version": None if last is None else last[0],
        "previous_histograms": None if last is None else last[1],
        "quality": _quality(version.lineage, frame.height, k, site.gate_reasons()),
    }


def _can_follow(
    site: Site, frame: pl.DataFrame, new: str | None, version: int, old: str | None, spec
) -> bool:
    """Whether histograms ``new`` of ``frame`` may follow the release ``old`` of ``version``:
    0 or at least ``min_group_size`` rows differ between the two (by row and binned
    values; once retention dropped ``version``, by the histograms themselves)."""
    k = site.config.quality.min_group_size
    if new is None or old is None:
        return True
    rows = _previous_rows(site, version)
    if rows is None:
        return differences_releasable(TableStats.from_json(new), TableStats.from_json(old), k)
    changed = _row_keys(frame, spec) ^ _row_keys(rows, spec)
    return len(changed) == 0 or len(changed) >= k


def _row_keys(frame: pl.DataFrame, spec: FeatureSpec) -> set[tuple[int, int]]:
    """Each row as what its histograms see (its bins) and, if any, its row id."""
    columns = [*histogram_columns(spec), *([pl.col(ROW_ID)] if ROW_ID in frame.columns else [])]
    hashes = frame.select(columns).hash_rows(seed=0).to_list()
    seen: dict[int, int] = {}
    keys = set()
    for value in hashes:  # (hash, occurrence): duplicate rows count one by one
        seen[value] = seen.get(value, 0) + 1
        keys.add((value, seen[value]))
    return keys


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
