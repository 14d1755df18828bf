"""The MLflow pyfunc of a fedlife model (imported only where MLflow is installed)."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from common.errors import DataError
from server.serving.model import load_served_model
from server.serving.records import check_records, encode_records

BUNDLE = "bundle"


class RawRecordModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]  # re-exported
    """The MLflow pyfunc: raw records in, predicted class and probabilities out."""

    def load_context(self, context: Any) -> None:
        self.model = load_served_model(context.artifacts[BUNDLE])

    def predict(self, context: Any, model_input: Any, params: dict | None = None) -> Any:
        import pandas as pd

        records = [
            {k: (None if _is_nan(v) else v) for k, v in row.items()}
            for row in pd.DataFrame(model_input).to_dict("records")
        ]
        spec = self.model.spec
        clean, errors = check_records(spec, records)
        if errors:
            first = errors[0]
            raise DataError(f"record {first.record}, field '{first.field}': {first.reason}")
        probabilities = self.model.predict_proba(encode_records(spec, clean))
        out = pd.DataFrame(probabilities, columns=[f"probability_{c}" for c in spec.classes])
        out.insert(0, "predicted", [spec.classes[i] for i in probabilities.argmax(axis=1)])
        return out


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
