"""Histograms on federation-wide edges and the population stability index (PSI).

Every site bins its rows the same way: a numeric feature on its unit scale (the
public range of the merged :class:`~common.features.FeatureSpec`, log or linear)
cut into ``BINS`` equal-width bins; a categorical feature (the source column of
one-hot indicators) and the label by value. Bins are categories, so a site's
histogram is a :class:`~common.stats.TableStats` of categorical columns and goes
through :func:`common.disclosure.suppress_small_groups` like any other statistic:
small bins are folded into ``'__other__'``.

PSI compares two histograms ``p`` and ``q`` of one column:
``sum((p_i - q_i) * ln(p_i / q_i))`` over their common bins; each side's bins the
other folded away are pooled into ``'__other__'`` first, so suppression never reads
as drift. The federation's histogram of a column is merged on the bins every site
released (:func:`federation_histogram`). Empty bins get a floor of ``PSI_FLOOR``
(the usual smoothing). Rule of thumb: below 0.1 stable, 0.1-0.25 moderate, above
0.25 a significant shift.
"""

from __future__ import annotations

import math

import polars as pl

from common.features import ONE_HOT, FeatureSpec
from common.stats import OTHER, CategoryStats

BINS = 10
PSI_FLOOR = 1e-4


def histogram_columns(spec: FeatureSpec) -> list[pl.Expr]:
    """Expressions binning a frame by ``spec``, one string column per histogram.

    Each is named after its feature (numeric), its source column (categorical) or
    the label; nulls stay null.
    """
    numeric = [n for n in spec.features if ONE_HOT not in n]
    categorical = sorted({n.split(ONE_HOT, 1)[0] for n in spec.features if ONE_HOT in n})
    units = {e.meta.output_name(): e for e in spec.unit_features()}
    expressions = [
        (units[name] * BINS).floor().clip(0, BINS - 1).cast(pl.Int64).cast(pl.String).alias(name)
        for name in numeric
    ]
    expressions += [pl.col(n).cast(pl.String).alias(n) for n in [*categorical, spec.label]]
    return expressions


def psi(expected: CategoryStats, actual: CategoryStats) -> float | None:
    """PSI of ``actual`` against ``expected`` on their common bins; None if either is empty."""
    kept = released_bins(expected) & released_bins(actual)
    p, q = coarsen(expected, kept).counts, coarsen(actual, kept).counts
    total_p, total_q = sum(p.values()), sum(q.values())
    if not total_p or not total_q:
        return None
    index = 0.0
    for name in set(p) | set(q):
        share_p = max(p.get(name, 0) / total_p, PSI_FLOOR)
        share_q = max(q.get(name, 0) / total_q, PSI_FLOOR)
        index += (share_q - share_p) * math.log(share_q / share_p)
    return index


def released_bins(stats: CategoryStats) -> set[str]:
    """The bins a histogram shows on their own (not folded into '__other__')."""
    return set(stats.counts) - {OTHER}


def coarsen(stats: CategoryStats, kept: set[str]) -> CategoryStats:
    """``stats`` with every bin outside ``kept`` pooled into '__other__'."""
    counts = {name: n for name, n in stats.counts.items() if name in kept}
    rest = stats.total - sum(counts.values())
    return CategoryStats({**counts, **({OTHER: rest} if rest else {})}, stats.nulls)


def federation_histogram(histograms: list[CategoryStats]) -> CategoryStats | None:
    """The sites' histograms of one column merged on the bins every one of them released.

    A site that released the column only as '__other__' carries no bin and is left
    out (it would otherwise blur every bin into '__other__'); None if none is left.
    A bin some site folded is pooled into '__other__' at every site, so the merged
    '__other__' never hides a bin another site released.
    """
    informative = [h for h in histograms if released_bins(h)]
    if not informative:
        return None
    kept = set.intersection(*(released_bins(h) for h in informative))
    merged = coarsen(informative[0], kept)
    for histogram in informative[1:]:
        merged = merged.merge(coarsen(histogram, kept))
    return merged
