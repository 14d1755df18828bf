"""Replies as sites build them (the wire models), for tests that play the coordinator."""

from __future__ import annotations

import json

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from common import keys
from common.stats import CategoryStats, ColumnStats, TableStats
from common.wire.delivered import delivered
from common.wire.messages import (
    AssessmentRecord,
    EvaluateMetrics,
    EvaluateReply,
    SiteRecord,
    TrainMetrics,
    TrainReply,
)

SHAPES = {"weight": (2, 3), "bias": (2,)}


def site_record(name: str) -> SiteRecord:
    return SiteRecord(
        name=name,
        table_version=1,
        labeled_version=-1,
        epsilon_budget=3.0,
        delta=1e-5,
        purged_versions="[]",
    )


def arrays(value: float = 0.0) -> ArrayRecord:
    return ArrayRecord({n: torch.full(s, value) for n, s in SHAPES.items()})


def train_content(name: str) -> RecordDict:
    metrics = TrainMetrics(num_examples=40, train_loss=float("nan"), epsilon=0.5)
    return TrainReply(arrays=arrays(), metrics=metrics, site=site_record(name)).to_content()


def fairness_json() -> str:
    columns = {f"sex=f|{m}": ColumnStats(20, 0, 12, 12, 0.0, 1.0) for m in ("correct", "selected")}
    return TableStats(20, columns).to_json()


def evaluate_content(name: str) -> RecordDict:
    metrics = EvaluateMetrics(loss=0.5, accuracy=0.8, f1=0.7, auc=0.9, num_examples=20)
    assessment = AssessmentRecord(
        fairness=fairness_json(), importance=json.dumps({"age": 0.1}), num_examples=20
    )
    return EvaluateReply(
        metrics=metrics, site=site_record(name), assessment=assessment
    ).to_content()


def reply(content: RecordDict, node: int, message_type: str = "train") -> Message:
    """``content`` as node ``node``'s reply to the coordinator's message."""
    sent = delivered(
        RecordDict({keys.CONFIG: ConfigRecord({})}), message_type=message_type, node=node
    )
    return Message(content, reply_to=sent)


def histograms(bins: list[str]) -> str:
    return TableStats(20 * len(bins), {"age": CategoryStats({b: 20 for b in bins})}).to_json()
