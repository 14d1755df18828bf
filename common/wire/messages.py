"""The messages a site sends the coordinator, one model each, every field classified.

The ClientApp builds its replies with these models (``Model(...).to_content()``) and
the ServerApp reads them with ``Model.read(content, context)``: a reply that does not
validate excludes its site for the round, with the validation error as the reason.
``context`` may hold ``spec`` (the run's :class:`~common.features.FeatureSpec`: moments
and histograms must fit it) and ``shapes`` (name -> shape of the global model's arrays).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from flwr.app import ArrayRecord
from pydantic import Field, ValidationInfo, field_validator, model_validator

from common import keys
from common.errors import DataError
from common.features import FeatureSpec
from common.histograms import BINS
from common.stats import OTHER, CategoryStats, TableStats
from common.wire.assessment import AssessmentRecord, ChampionFairness, EvaluateMetrics
from common.wire.base import RecordModel, WireMessage
from common.wire.encrypted import EncryptedRecord
from common.wire.privacy import Privacy as P
from common.wire.privacy import wire_field as f
from common.wire.values import (
    MAX_FEATURES,
    MAX_JSON,
    MAX_NAME,
    Epsilon,
    NaNOrFinite,
    parse_json,
)

MAX_REASON = 2000


def check_histograms(text: str | None, spec: FeatureSpec | None) -> TableStats | None:
    """A site's histograms, parsed; numeric features' bins must be ``0..BINS-1``."""
    if text is None:
        return None
    try:
        stats = TableStats.from_json(text)
    except DataError as error:
        raise ValueError(str(error)) from None
    numeric = None if spec is None else {n for n in spec.features if "=" not in n}
    allowed = {str(b) for b in range(BINS)} | {OTHER}
    for name, column in stats.columns.items():
        if not isinstance(column, CategoryStats):
            raise ValueError(f"histogram {name!r} is not a histogram of bins")
        looks_numeric = all(c.isdigit() for c in column.counts) and column.counts
        if (name in numeric) if numeric is not None else looks_numeric:
            wrong = sorted(set(column.counts) - allowed)
            if wrong:
                raise ValueError(f"histogram {name!r} has bins {wrong[:3]} outside 0..{BINS - 1}")
    return stats


class SiteName(RecordModel):
    name: str = f(
        P.PUBLIC,
        "the site's name in the federation",
        alias=keys.SITE_NAME,
        min_length=1,
        max_length=MAX_NAME,
    )


class SiteRecord(SiteName):
    table_version: int = f(
        P.PUBLIC, "version of the clean table used", alias=keys.TABLE_VERSION, ge=-1
    )
    labeled_version: int = f(
        P.PUBLIC, "version of the labeled table used (-1: none)", alias=keys.LABELED_VERSION, ge=-1
    )
    epsilon_budget: float = f(
        P.PUBLIC, "the site's budget, from its policy (-1: privacy off)", alias=keys.EPSILON_BUDGET
    )
    delta: float = f(P.PUBLIC, "the site's delta, from its policy", alias=keys.DELTA, ge=0, le=1)
    purged_versions: str = f(
        P.PUBLIC,
        "table versions erasures purged, never whose rows",
        alias=keys.PURGED_VERSIONS,
        max_length=MAX_JSON,
    )
    eval_split: Literal["test", "train"] | None = f(
        P.PUBLIC, "whether metrics come from held-out rows", alias="eval-split", default=None
    )
    epsilon: float | None = f(
        P.PUBLIC,
        "epsilon the site's ledger composed (statistics reply: retrain's budget left)",
        alias=keys.EPSILON,
        default=None,
        ge=0,
    )
    audit_head: str | None = f(
        P.PUBLIC,
        "seq and sha256 of the site's audit-log head: hashes of actions, never of rows",
        alias=keys.AUDIT_HEAD,
        default=None,
        pattern=r"^[0-9]{1,12}:[0-9a-f]{64}$",
    )
    store_id: str | None = f(
        P.PUBLIC,
        "keyed hash naming the site's store (a recreated store gets a new one)",
        alias=keys.STORE_ID,
        default=None,
        pattern=r"^[0-9a-f]{16}$",
    )

    @field_validator("purged_versions")
    @classmethod
    def _versions(cls, text: str) -> str:
        versions = parse_json(text, "purged-versions")
        if not isinstance(versions, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in versions
        ):
            raise ValueError("purged-versions must be a JSON list of integers")
        return text


class ExcludedRecord(RecordModel):
    reason: str = f(
        P.PUBLIC,
        "the rule or policy that refused, never a count of rows",
        alias=keys.REASON,
        max_length=MAX_REASON,
    )


class ProfileRecord(RecordModel):
    feature_spec: str = f(
        P.PUBLIC,
        "the schema's declared features, ranges and classes",
        alias=keys.FEATURE_SPEC,
        max_length=MAX_JSON,
    )
    gate: str = f(
        P.PUBLIC,
        "the gate rules that failed, never a count of rows",
        alias="gate",
        max_length=MAX_REASON,
    )

    @field_validator("feature_spec")
    @classmethod
    def _spec(cls, text: str) -> str:
        try:
            FeatureSpec.from_json(text)
        except (TypeError, ValueError, DataError) as error:
            raise ValueError(f"feature-spec does not parse ({error})") from None
        return text


class MomentsRecord(RecordModel):
    count: float = f(P.DP, "noisy row count, Gaussian mechanism, in the ledger", alias="count")
    sums: list[float] = f(
        P.DP,
        "noisy per-feature sums, Gaussian mechanism, in the ledger",
        alias="sums",
        max_length=MAX_FEATURES,
    )
    squares: list[float] = f(
        P.DP,
        "noisy sums of squares (or none), in the ledger",
        alias="squares",
        max_length=MAX_FEATURES,
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> MomentsRecord:
        spec = (info.context or {}).get("spec")
        if spec is not None and len(self.sums) != spec.num_features:
            raise ValueError(f"{len(self.sums)} sums for {spec.num_features} features")
        if self.squares and len(self.squares) != len(self.sums):
            raise ValueError(f"{len(self.squares)} squares for {len(self.sums)} sums")
        return self


class StatisticsRecord(RecordModel):
    statistics: str = f(
        P.AGGREGATE,
        "histograms of the current and previous version and quality counts: bins and "
        "counts under min_group_size suppressed, a version's histograms withheld when "
        "their difference from the last release covers fewer",
        alias=keys.STATISTICS,
        max_length=MAX_JSON,
    )

    @field_validator("statistics")
    @classmethod
    def _parses(cls, text: str, info: ValidationInfo) -> str:
        data = parse_json(text, "statistics")
        wanted = {"version", "histograms", "previous_version", "previous_histograms", "quality"}
        if not isinstance(data, dict) or set(data) != wanted:
            raise ValueError(f"statistics must be an object with keys {sorted(wanted)}")
        spec = (info.context or {}).get("spec")
        for key in ("histograms", "previous_histograms"):
            if data[key] is not None and not isinstance(data[key], str):
                raise ValueError(f"statistics.{key} must be TableStats JSON or null")
            check_histograms(data[key], spec)
        if not isinstance(data["quality"], dict):
            raise ValueError("statistics.quality must be an object")
        return text


class TrainMetrics(RecordModel):
    METRIC: ClassVar[bool] = True
    num_examples: int = f(
        P.COARSENED,
        "rows trained on (the FedAvg weight), a multiple of min_group_size while privacy is on",
        alias=keys.NUM_EXAMPLES,
        ge=0,
    )
    train_loss: NaNOrFinite = f(
        P.SUPPRESSED, "DP-SGD's own loss: NaN while privacy is on", alias="train-loss"
    )
    epsilon: Epsilon = f(P.PUBLIC, "epsilon the site's ledger composed", alias=keys.EPSILON)


def _arrays(arrays: ArrayRecord, info: ValidationInfo) -> ArrayRecord:
    shapes = (info.context or {}).get("shapes")
    if shapes is not None and list(arrays) != list(shapes):
        raise ValueError("arrays are not the global model's")
    for name, array in arrays.items():
        values = array.numpy()
        if shapes is not None and tuple(values.shape) != tuple(shapes[name]):
            raise ValueError(f"array {name!r} has shape {values.shape}, not {shapes[name]}")
        if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
            raise ValueError(f"array {name!r} is not all finite numbers")
    return arrays


class ProfileReply(WireMessage):
    TITLE: ClassVar[str] = "profile reply"
    profile: ProfileRecord = Field(alias=keys.PROFILE)
    site: SiteRecord = Field(alias=keys.SITE)


class MomentsReply(WireMessage):
    TITLE: ClassVar[str] = "moments reply"
    moments: MomentsRecord = Field(alias=keys.MOMENTS)
    site: SiteRecord = Field(alias=keys.SITE)


class StatisticsReply(WireMessage):
    TITLE: ClassVar[str] = "statistics reply"
    statistics: StatisticsRecord = Field(alias=keys.STATISTICS)
    site: SiteRecord = Field(alias=keys.SITE)


class _Trained(WireMessage):
    """What a train reply carries beside the model, in the clear or encrypted."""

    metrics: TrainMetrics = Field(alias=keys.METRICS)
    site: SiteRecord = Field(alias=keys.SITE)


class TrainReply(_Trained):
    TITLE: ClassVar[str] = "train reply"
    ARRAYS: ClassVar[dict[str, tuple[P, str]]] = {
        keys.ARRAYS: (P.DP, "model update after DP-SGD, its noise in the ledger")
    }
    arrays: ArrayRecord = Field(alias=keys.ARRAYS)

    _check_arrays = field_validator("arrays")(_arrays)


class EncryptedTrainReply(_Trained):
    """A site's update under encrypted aggregation: ciphertexts instead of arrays."""

    TITLE: ClassVar[str] = "encrypted train reply"
    encrypted: EncryptedRecord = Field(alias=keys.ENCRYPTED)


class DecryptedModelReply(WireMessage):
    """The final encrypted model, decrypted by a site whose policy agrees (once a run)."""

    TITLE: ClassVar[str] = "decrypted final model"
    ARRAYS: ClassVar = {keys.ARRAYS: (P.DP, "final sum of DP-SGD updates, decrypted by consent")}
    arrays: ArrayRecord = Field(alias=keys.ARRAYS)
    site: SiteRecord = Field(alias=keys.SITE)
    _check_arrays = field_validator("arrays")(_arrays)


class EvaluateReply(WireMessage):
    """The global model evaluated at a site; beside it, when the message carried the
    deployed champion's arrays, the champion on the same rows (champion / challenger)."""

    TITLE: ClassVar[str] = "evaluate reply"
    metrics: EvaluateMetrics = Field(alias=keys.METRICS)
    site: SiteRecord = Field(alias=keys.SITE)
    assessment: AssessmentRecord = Field(alias=keys.ASSESSMENT)
    champion_metrics: EvaluateMetrics | None = Field(alias=keys.CHAMPION_METRICS, default=None)
    champion_fairness: ChampionFairness | None = Field(alias=keys.CHAMPION_FAIRNESS, default=None)


class Exclusion(WireMessage):
    """A site's refusal (gate, budget, policy): the reason instead of an answer."""

    TITLE: ClassVar[str] = "exclusion"
    excluded: ExcludedRecord = Field(alias=keys.EXCLUDED)
    site: SiteName = Field(alias=keys.SITE)


REPLIES: tuple[type[WireMessage], ...] = (
    ProfileReply,
    MomentsReply,
    StatisticsReply,
    TrainReply,
    EncryptedTrainReply,
    DecryptedModelReply,
    EvaluateReply,
    Exclusion,
)
