"""The prediction service: FastAPI app over the model's feature contract.

A request is refused whole (422) when any record cannot be encoded; the answer
names every bad record and its field, so a client can fix them and resend.
"""

# No postponed annotations: FastAPI must see the real Request class of the endpoint.
from collections.abc import Callable
from typing import Any

import numpy as np

from common.features import FeatureSpec
from server.serving.records import check_records, encode_records

MAX_BODY_BYTES = 1_000_000


def create_app(
    spec: FeatureSpec,
    predict_proba: Callable[[np.ndarray], np.ndarray],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> "Any":
    """A FastAPI app answering ``POST /predict`` and ``GET /health``.

    Parameters
    ----------
    spec : FeatureSpec
        The model's feature contract.
    predict_proba : callable
        Encoded features (n x num_features, float32) to class probabilities.
    max_body_bytes : int
        Larger request bodies get 413.
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("serving needs fastapi: pip install 'fedlife[serve]'") from err

    app = FastAPI(title="fedlife model")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        body = await request.body()
        if len(body) > max_body_bytes:
            return JSONResponse({"detail": f"body over {max_body_bytes} bytes"}, status_code=413)
        try:
            import json

            records = json.loads(body)
        except ValueError:
            return JSONResponse({"detail": "body is not JSON"}, status_code=422)
        if not isinstance(records, list):
            return JSONResponse({"detail": "body must be a list of records"}, status_code=422)
        clean, errors = check_records(spec, records)
        if errors:
            detail = [{"record": e.record, "field": e.field, "reason": e.reason} for e in errors]
            return JSONResponse({"detail": detail}, status_code=422)
        probabilities = predict_proba(encode_records(spec, clean))
        return [
            {
                "class": spec.classes[int(np.argmax(p))],
                "probabilities": dict(zip(spec.classes, map(float, p), strict=True)),
            }
            for p in probabilities
        ]

    return app
