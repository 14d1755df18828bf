"""Central evaluation on a held-out split the coordinator owns."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from flwr.app import ArrayRecord

from common.errors import DataError
from common.evaluation import evaluate_model
from common.features import FeatureSpec
from common.models import build_model


class CentralEvaluation:
    """Evaluates each round's global model on the coordinator's test rows.

    Parameters
    ----------
    x, y : the test rows, encoded with the federation's feature spec.
    spec : that feature spec.
    model_name : architecture from ``common.models``.
    """

    def __init__(self, x, y, spec: FeatureSpec, model_name: str) -> None:
        self.x, self.y, self.spec, self.model_name = x, y, spec, model_name

    @classmethod
    def load(cls, path: str, spec: FeatureSpec, model_name: str) -> CentralEvaluation | None:
        if not path:
            return None
        try:
            frame = pl.read_csv(Path(path), infer_schema_length=10_000)
        except (OSError, pl.exceptions.PolarsError) as error:
            raise DataError(f"{path}: cannot read the test data ({error})") from None
        x, y = spec.encode(frame)
        return cls(x, y, spec, model_name)

    def evaluate(self, arrays: ArrayRecord) -> dict[str, float]:
        model = build_model(self.model_name, self.spec.num_features, self.spec.num_classes)
        model.load_state_dict(arrays.to_torch_state_dict())
        return evaluate_model(model, self.x, self.y)
