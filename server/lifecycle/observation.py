"""What ``retrain`` decides on: the sites' current data against the champion's.

Each site answers with aggregates only (the statistics query of a run: its clean
table's version and histograms on the champion's bins, small bins suppressed) and the
epsilon it has left. They are compared with the champion's ``statistics.json``,
recorded when it trained: a site whose version changed counts in ``new_versions``,
and ``drift`` is the largest PSI of a site's current histogram against its own
histogram then (the federation's, for a site the champion did not see).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from common.errors import DataError, RunDirError
from common.histograms import psi, released_bins
from common.stats import CategoryStats, TableStats
from server.run_dir import RunDirectory

STATISTICS = "statistics.json"
DAY_S = 86_400.0


@dataclass
class SiteAnswer:
    """One site's answer to the retrain query.

    Parameters
    ----------
    site : the site's name.
    version : its current clean table version.
    histograms : TableStats JSON of its current clean rows on the champion's bins
        (None: below ``min_group_size``, nothing released).
    epsilon_left : the epsilon its ledger has left (None: trains without DP).
    """

    site: str
    version: int
    histograms: str | None
    epsilon_left: float | None


@dataclass
class Observation:
    """The quantities ``--when`` reads, and per-site detail for the events.

    Parameters
    ----------
    values : quantity -> number (``trigger.QUANTITIES``).
    sites : one row per site: version, trained version, drift and its column.
    """

    values: dict[str, float]
    sites: list[dict[str, Any]] = field(default_factory=list)

    def drifted(self, threshold: float) -> list[dict[str, Any]]:
        return [s for s in self.sites if s["drift"] is not None and s["drift"] > threshold]

    def versions(self) -> dict[str, int]:
        return {s["site"]: s["version"] for s in self.sites}


def observe(champion: str | Path, answers: list[SiteAnswer]) -> Observation:
    """Compare the sites' answers with what the champion recorded when it trained."""
    run = RunDirectory(champion)
    if not (run.path / STATISTICS).exists():
        raise RunDirError(f"{run.path}: no {STATISTICS}: the champion recorded no site data")
    recorded = run.read_json(STATISTICS)
    drift = recorded.get("drift") or {}
    trained = {s: v.get("version") for s, v in (recorded.get("versions") or {}).items()}
    then = {s: TableStats.from_dict(t) for s, t in (drift.get("sites") or {}).items()}
    federation = {c: CategoryStats.from_dict(h) for c, h in (drift.get("federation") or {}).items()}
    rows = []
    for answer in sorted(answers, key=lambda a: a.site):
        row: dict[str, Any] = {
            "site": answer.site,
            "version": answer.version,
            "trained_version": trained.get(answer.site),
            "drift": None,
            "drift_column": None,
            "epsilon_left": answer.epsilon_left,
        }
        if answer.histograms:
            try:
                now = TableStats.from_json(answer.histograms)
            except (DataError, KeyError, TypeError, ValueError):
                now = None
            reference = then[answer.site].columns if answer.site in then else federation
            for column, column_stats in (now.columns if now else {}).items():
                # Histogram tables hold category counts only.
                histogram = cast(CategoryStats, column_stats)
                base = cast(CategoryStats | None, reference.get(column))
                value = psi(base, histogram) if base and released_bins(histogram) else None
                if value is not None and (row["drift"] is None or value > row["drift"]):
                    row["drift"], row["drift_column"] = value, column
        rows.append(row)
    left = [r["epsilon_left"] for r in rows if r["epsilon_left"] is not None]
    values = {
        "new_versions": float(sum(r["version"] != r["trained_version"] for r in rows)),
        "drift": max((r["drift"] for r in rows if r["drift"] is not None), default=0.0),
        "days_since": (time.time() - _finished(run)) / DAY_S,
        "budget_left": min(left, default=math.inf),
        "sites": float(len(rows)),
    }
    return Observation(values, rows)


def _finished(run: RunDirectory) -> float:
    """When the champion finished training: its summary's (else its last round's) time."""
    for name in ("summary.json", "metrics.jsonl", "run.json"):
        if (run.path / name).exists():
            return (run.path / name).stat().st_mtime
    return time.time()
