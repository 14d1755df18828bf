"""Fairness and feature importance of the global model, merged from the sites' aggregates.

Each site sends, per group of each ``sensitive`` column, statistics of indicator
columns (``<column>=<group>|<metric>``, see ``client.federation.assessment``) that passed its
small-group rule. Their means are the group's rates; merged across sites with
:meth:`TableStats.merge` (exact) they are the federation's.

* accuracy per group: mean of ``correct``;
* demographic parity difference: largest minus smallest selection rate
  (``selected``: predicted the positive class) over a column's groups;
* equalized-odds difference: the larger of the gaps in true-positive rate
  (``selected_if_positive``) and false-positive rate (``selected_if_negative``),
  as fairlearn defines it.

A group a site withheld (fewer than ``min_group_size`` rows) is simply absent.
"""

from __future__ import annotations

import json
import math
from typing import Any

from common.errors import DataError
from common.stats import ColumnStats, TableStats


def fairness_metrics(stats: TableStats) -> dict[str, dict[str, Any]]:
    """Per sensitive column: per-group rates and the two differences."""
    rates: dict[str, dict[str, dict[str, float]]] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, column in stats.columns.items():
        head, _, metric = name.rpartition("|")
        attribute, equals, group = head.partition("=")
        if not (metric and equals) or not isinstance(column, ColumnStats):
            raise DataError(f"fairness column {name[:80]!r} is not 'column=group|metric' stats")
        mean = column.mean  # None exactly when the count is 0
        if column.count and mean is not None:
            rates.setdefault(attribute, {}).setdefault(group, {})[metric] = mean
            if metric == "correct":
                counts.setdefault(attribute, {})[group] = column.count
    found = {}
    for attribute, groups in sorted(rates.items()):
        found[attribute] = {
            "groups": {
                g: {
                    "rows": counts.get(attribute, {}).get(g),
                    "accuracy": r.get("correct"),
                    "selection_rate": r.get("selected"),
                    "true_positive_rate": r.get("selected_if_positive"),
                    "false_positive_rate": r.get("selected_if_negative"),
                }
                for g, r in sorted(groups.items())
            },
            "demographic_parity_difference": _gap(groups, "selected"),
            "equalized_odds_difference": _max_gap(
                _gap(groups, "selected_if_positive"), _gap(groups, "selected_if_negative")
            ),
            "accuracy_difference": _gap(groups, "correct"),
        }
    return found


def merge_fairness(per_site: dict[str, str]) -> dict[str, Any]:
    """Fairness per site and federated, from each site's TableStats JSON."""
    parsed = {site: TableStats.from_json(text) for site, text in per_site.items() if text}
    if not parsed:
        return {}
    first, *others = parsed.values()
    merged = first
    for stats in others:
        merged = merged.merge(stats)
    return {
        "per_site": {site: fairness_metrics(stats) for site, stats in sorted(parsed.items())},
        "federated": fairness_metrics(merged),
    }


def merge_importance(per_site: dict[str, tuple[str, int]]) -> dict[str, Any]:
    """Example-weighted mean permutation importance, and each site's own."""
    parsed = {s: (_importance(t, s), n) for s, (t, n) in per_site.items() if t}
    if not parsed:
        return {}
    totals: dict[str, float] = {}
    weights: dict[str, int] = {}
    for importance, n in parsed.values():
        for feature, value in importance.items():
            totals[feature] = totals.get(feature, 0.0) + value * n
            weights[feature] = weights.get(feature, 0) + n
    federated = {f: totals[f] / weights[f] for f in totals}
    return {
        "method": "permutation importance (mean loss increase, merged weighted by rows)",
        "federated": dict(sorted(federated.items(), key=lambda item: -item[1])),
        "per_site": {s: importance for s, (importance, _) in sorted(parsed.items())},
    }


def _gap(groups: dict[str, dict[str, float]], metric: str) -> float | None:
    values = [r[metric] for r in groups.values() if r.get(metric) is not None]
    return max(values) - min(values) if len(values) >= 2 else None


def _max_gap(*gaps: float | None) -> float | None:
    known = [g for g in gaps if g is not None]
    return max(known) if known else None


def _importance(text: str, site: str) -> dict[str, float]:
    try:
        importance = json.loads(text)
    except (TypeError, ValueError):
        raise DataError(f"importance of {site} is not JSON") from None
    if not isinstance(importance, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in importance.values()
    ):
        raise DataError(f"importance of {site} must map feature -> finite number")
    return importance
