"""Drift: each site's histograms against the rest of the federation and its last version.

Sites send histograms of their latest clean version and of the version before it
(``client.federation.statistics``), binned on the federation's edges and with small bins
suppressed. For every site and column (features and the label) the server computes
the PSI (:func:`common.histograms.psi`) against the federation's histograms (all
sites merged, the site included) and against the site's previous version. A PSI
above the run's ``drift-threshold`` flags the site and column: in ``statistics.json``, the report,
and as a warning in the coordinator's log while the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from common.errors import DataError
from common.features import FeatureSpec
from common.histograms import federation_histogram, psi, released_bins
from common.stats import CategoryStats, TableStats

logger = logging.getLogger("fedlife.drift")


def assess_drift(
    statistics: dict[str, dict[str, Any]], spec: FeatureSpec, threshold: float
) -> dict[str, Any]:
    """PSI of every site and column, against the federation and the previous version.

    Parameters
    ----------
    statistics : site -> what ``client.federation.statistics.site_statistics`` returned.
    spec : the federation's feature spec (names the label).
    threshold : PSI above which a site and column are flagged.
    """
    current = {
        s: TableStats.from_json(v["histograms"]) for s, v in statistics.items() if v["histograms"]
    }
    rows = []
    federation = {
        column: federation_histogram(
            # Histogram tables hold category counts only (as every reader here assumes).
            [
                cast(CategoryStats, t.columns[column])
                for t in current.values()
                if column in t.columns
            ]
        )
        for column in {c for t in current.values() for c in t.columns}
    }
    for site, stats in sorted(current.items()):
        text = statistics[site].get("previous_histograms")
        previous = TableStats.from_json(text) if text else None
        for column, column_stats in stats.columns.items():
            histogram = cast(CategoryStats, column_stats)
            before = previous.columns.get(column) if previous else None
            row: dict[str, Any] = {
                "site": site,
                "column": column,
                "kind": "label" if column == spec.label else "feature",
                "psi_federation": _psi(federation.get(column), histogram),
                "psi_previous": _psi(cast(CategoryStats | None, before), histogram),
            }
            row["flagged"] = any(
                v is not None and v > threshold
                for v in (row["psi_federation"], row["psi_previous"])
            )
            rows.append(row)
    return {
        "threshold": threshold,
        "label": spec.label,
        "rows": rows,
        "flagged": [r for r in rows if r["flagged"]],
        "federation": {c: h.to_dict() for c, h in sorted(federation.items()) if h is not None},
        "sites": {s: t.to_dict() for s, t in current.items()},
    }


def statistics_record(
    statistics: dict[str, dict[str, Any]], spec: FeatureSpec, threshold: float
) -> dict[str, Any]:
    """What ``statistics.json`` holds: quality, versions, drift and the warnings logged.

    Statistics the server cannot read are recorded as an error and warned about:
    the report is no reason to stop a run.
    """
    try:
        drift = assess_drift(statistics, spec, threshold)
    except (DataError, KeyError, TypeError) as error:
        logger.warning("site statistics unreadable, no drift assessed: %s", error)
        return {"quality": {}, "versions": {}, "drift": None, "warnings": [], "error": str(error)}
    return {
        "quality": {site: s["quality"] for site, s in sorted(statistics.items())},
        "versions": {
            site: {"version": s["version"], "previous_version": s["previous_version"]}
            for site, s in sorted(statistics.items())
        },
        "drift": drift,
        "warnings": warn_about(drift),
    }


def warn_about(drift: dict[str, Any]) -> list[str]:
    """Log one warning per flagged site; return the lines."""
    lines = []
    by_site: dict[str, list[str]] = {}
    for row in drift["flagged"]:
        worst = max(v for v in (row["psi_federation"], row["psi_previous"]) if v is not None)
        by_site.setdefault(row["site"], []).append(f"{row['column']} ({worst:.2f})")
    for site, columns in sorted(by_site.items()):
        line = (
            f"drift at {site}: PSI above {drift['threshold']:g} for {len(columns)} column(s): "
            + ", ".join(columns[:8])
            + (" ..." if len(columns) > 8 else "")
        )
        logger.warning(line)
        lines.append(line)
    return lines


def _psi(reference: CategoryStats | None, histogram: CategoryStats) -> float | None:
    """PSI against ``reference``; None without one or if ``histogram`` released no bin."""
    if reference is None or not released_bins(histogram):
        return None
    return psi(reference, histogram)
