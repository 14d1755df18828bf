"""Merging the metrics sites report."""

from __future__ import annotations

import math

from flwr.app import MetricRecord, RecordDict

from common import keys


def weighted_mean_ignoring_nan(replies: list[RecordDict], weight_key: str) -> MetricRecord:
    """Example-weighted mean of every metric, skipping sites where it is undefined."""
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    for content in replies:
        record = next(iter(content.metric_records.values()))
        weight = float(record[weight_key])
        for name, value in record.items():
            if name == weight_key or not isinstance(value, int | float) or math.isnan(value):
                continue
            totals[name] = totals.get(name, 0.0) + weight * float(value)
            weights[name] = weights.get(name, 0.0) + weight
    merged = {name: totals[name] / weights[name] for name in totals if weights[name] > 0}
    merged[keys.NUM_EXAMPLES] = int(
        sum(float(next(iter(c.metric_records.values()))[weight_key]) for c in replies)
    )
    return MetricRecord(merged)
