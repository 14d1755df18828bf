"""Where the sites' declared feature contracts disagree: ranges, categories, label classes.

Public ranges and categories are meant to be agreed by the federation before a run
(docs/guides/agreeing-ranges.md). The coordinator still merges what the sites
declare (the union of ranges and classes; a site with other categories is excluded as
a schema mismatch), but it says so: each disagreement is one line for the log,
``run.json`` and the report.
"""

from __future__ import annotations

from collections import defaultdict

from common.features import ONE_HOT, FeatureSpec

SITES_SHOWN = 6


def disagreements(specs: list[FeatureSpec], names: list[str], merged: FeatureSpec) -> list[str]:
    """One line per column whose declared range, categories or classes differ by site.

    Parameters
    ----------
    specs : the sites' declared contracts, in reply order.
    names : the sites' names, in the same order.
    merged : the federation's contract, merged from the agreeing ``specs``.
    """
    lines = []
    agreeing = [(n, s) for n, s in zip(names, specs) if s.shape == merged.shape]
    for index, feature in enumerate(merged.features):
        if ONE_HOT in feature:
            continue
        declared = {n: (s.lows[index], s.highs[index]) for n, s in agreeing}
        if len(set(declared.values())) > 1:
            low, high = merged.lows[index], merged.highs[index]
            lines.append(
                f"{feature}: sites declare different ranges ({_by_site(declared, _range)}); "
                f"the federation takes their union {_range((low, high))}"
            )
    classes = {n: tuple(s.classes) for n, s in agreeing}
    if len(set(classes.values())) > 1:
        lines.append(
            f"{merged.label} (label): sites declare different classes "
            f"({_by_site(classes, _values)}); the federation takes their union "
            f"{_values(tuple(merged.classes))}"
        )
    lines += _category_lines(specs, names, merged)
    return lines


def _category_lines(specs: list[FeatureSpec], names: list[str], merged: FeatureSpec) -> list[str]:
    """Categories a site declares other than the federation's (such a site is excluded)."""
    declared: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)
    for name, spec in zip(names, specs):
        for column, values in _categories(spec.features).items():
            declared[column][name] = values
    federation = _categories(merged.features)
    lines = []
    for column, by_site in declared.items():
        if len(set(by_site.values())) > 1:
            others = sorted(n for n, v in by_site.items() if v != federation.get(column))
            lines.append(
                f"{column}: sites declare different categories ({_by_site(by_site, _values)}); "
                f"excluded as a schema mismatch: {', '.join(others)}"
            )
    return lines


def _categories(features: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = defaultdict(list)
    for feature in features:
        if ONE_HOT in feature:
            column, value = feature.split(ONE_HOT, 1)
            found[column].append(value)
    return {column: tuple(sorted(values)) for column, values in found.items()}


def _by_site(declared: dict, show) -> str:
    groups: dict[object, list[str]] = defaultdict(list)
    for site, value in declared.items():
        groups[value].append(site)
    # In site order, whatever order the replies came in.
    ordered = sorted(groups.items(), key=lambda item: min(item[1]))
    parts = [f"{', '.join(sorted(sites))}: {show(value)}" for value, sites in ordered]
    return "; ".join(parts[:SITES_SHOWN]) + ("; ..." if len(parts) > SITES_SHOWN else "")


def _range(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:g}..{bounds[1]:g}"


def _values(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(values) + "]"
