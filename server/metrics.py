"""Merging the metrics sites report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flwr.app import MetricRecord, RecordDict

from common import keys
from common.errors import DataError


def weighted_mean_ignoring_nan(replies: list[RecordDict], weight_key: str) -> MetricRecord:
    """Example-weighted mean of every metric, skipping sites where it is undefined."""
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    examples = 0.0
    for content in replies:
        record: Mapping[str, Any] = next(iter(content.metric_records.values()), {})
        weight = record.get(weight_key)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight >= 0:
            raise DataError(f"a site's metrics carry no valid {weight_key!r}: {weight!r}")
        examples += weight
        for name, value in record.items():
            if name == weight_key or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            totals[name] = totals.get(name, 0.0) + weight * float(value)
            weights[name] = weights.get(name, 0.0) + weight
    merged: dict[str, int | float | list[int] | list[float]] = {
        name: totals[name] / weights[name] for name in totals if weights[name] > 0
    }
    merged[keys.NUM_EXAMPLES] = int(examples)
    return MetricRecord(merged)
