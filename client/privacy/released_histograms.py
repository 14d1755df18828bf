"""Histograms a site has released, so two releases never expose fewer than k rows.

Each histogram release passes the small-group rule alone, but the coordinator keeps
every release: two versions' histograms subtracted bin by bin tell it about the rows
that came, went or changed between them. A site therefore remembers, per binning (the
federation's feature spec), every version's histograms it released
(``<store>/privacy/released-histograms.json``), and ``client.federation.statistics``
releases a new version's only when, against each of them, 0 or at least
``min_group_size`` rows differ (by row id and binned values); a version that added,
removed or relabelled a few rows is withheld until enough have changed. Once retention
dropped an earlier version's rows, :func:`differences_releasable` judges from the two
histograms alone. Like the small-group rule itself, this is threshold suppression, not
differential privacy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from common.atomic_files import write_atomically
from common.stats import CategoryStats, ColumnStats, TableStats


def differences_releasable(new: TableStats, old: TableStats, min_group_size: int) -> bool:
    """Whether ``new - old`` covers 0 or at least ``min_group_size`` rows: the row count,
    and in every column the rows that changed bin (the sum of its bins' differences)."""
    changed = [abs(new.n_rows - old.n_rows)]
    for name in set(new.columns) | set(old.columns):
        a, b = _counts(new.columns.get(name)), _counts(old.columns.get(name))
        changed.append(sum(abs(a.get(key, 0) - b.get(key, 0)) for key in set(a) | set(b)))
    return all(n == 0 or n >= min_group_size for n in changed)


def _counts(stats: ColumnStats | CategoryStats | None) -> dict[str, int]:
    if stats is None:
        return {}
    if isinstance(stats, CategoryStats):
        return {**{f"bin:{k}": v for k, v in stats.counts.items()}, "nulls": stats.nulls}
    return {"count": stats.count, "nulls": stats.nulls}


class ReleasedHistograms:
    """The histograms released per binning and version, under ``<store>/privacy``.

    Parameters
    ----------
    store_dir : the site's store.
    binning : what the bins are cut on (the federation's feature spec as JSON).
    """

    def __init__(self, store_dir: Path, binning: str) -> None:
        self.path = Path(store_dir) / "privacy" / "released-histograms.json"
        self.key = hashlib.sha256(binning.encode()).hexdigest()[:16]

    def _all(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def versions(self) -> dict[int, str]:
        """Version -> histograms JSON of every version released with this binning."""
        found = self._all().get(self.key, {})
        return {int(version): str(text) for version, text in found.items()}

    def keep(self, version: int, histograms: str) -> None:
        data = self._all()
        data.setdefault(self.key, {})[str(version)] = histograms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(data))
