"""What a site says about a model it evaluated: metrics on held-out rows, per-group
fairness counts and feature importance, all coarsened or aggregated."""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import AfterValidator, field_validator

from common import keys
from common.errors import DataError
from common.stats import TableStats
from common.wire.base import RecordModel
from common.wire.privacy import Privacy as P
from common.wire.privacy import wire_field as f
from common.wire.values import MAX_JSON, NaNOrFinite, parse_json


class EvaluateMetrics(RecordModel):
    METRIC: ClassVar[bool] = True
    loss: float = f(P.COARSENED, "global model's loss on held-out rows, coarsened", alias="loss")
    accuracy: float = f(
        P.COARSENED,
        "global model's accuracy on held-out rows, coarsened",
        alias="accuracy",
        ge=0,
        le=1,
    )
    f1: float = f(
        P.COARSENED, "global model's macro F1 on held-out rows, coarsened", alias="f1", ge=0, le=1
    )
    auc: NaNOrFinite = f(
        P.COARSENED,
        "global model's AUC on held-out rows, coarsened (NaN: one class only)",
        alias="auc",
    )
    num_examples: int = f(
        P.COARSENED,
        "rows evaluated on, a multiple of min_group_size while privacy is on",
        alias=keys.NUM_EXAMPLES,
        ge=0,
    )


def fairness_text(text: str) -> str:
    """``text`` if it is empty or parses as fairness counts (column=group|metric)."""
    if text:
        try:
            stats = TableStats.from_json(text)
        except DataError as error:
            raise ValueError(f"fairness: {error}") from None
        for name in stats.columns:
            head, _, metric = name.rpartition("|")
            if "=" not in head or not metric:
                raise ValueError(f"fairness column {name[:80]!r} is not 'column=group|metric'")
    return text


# Fairness counts as JSON text, checked wherever a record carries them.
FairnessText = Annotated[str, AfterValidator(fairness_text)]


class AssessmentRecord(RecordModel):
    fairness: FairnessText = f(
        P.AGGREGATE,
        "per-group counts and rates, groups of >= min_group_size",
        alias=keys.FAIRNESS,
        max_length=MAX_JSON,
    )
    importance: str = f(
        P.AGGREGATE,
        "permutation importance, released from >= min_group_size rows",
        alias=keys.IMPORTANCE,
        max_length=MAX_JSON,
    )
    num_examples: int = f(
        P.COARSENED,
        "rows the assessment used, a multiple of min_group_size while privacy is on",
        alias=keys.NUM_EXAMPLES,
        ge=0,
    )

    @field_validator("importance")
    @classmethod
    def _importance(cls, text: str) -> str:
        if text:
            data = parse_json(text, "importance")
            if not isinstance(data, dict) or not all(
                isinstance(v, int | float) and math.isfinite(v) for v in data.values()
            ):
                raise ValueError("importance must map feature -> finite number")
        return text


class ChampionFairness(RecordModel):
    fairness: FairnessText = f(
        P.AGGREGATE,
        "the champion's per-group counts and rates, groups of >= min_group_size",
        alias=keys.FAIRNESS,
        max_length=MAX_JSON,
    )
