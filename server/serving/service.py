"""The prediction service: FastAPI app over the model's feature contract.

A request is refused whole (422) when any record cannot be encoded; the answer
names every bad record and its field, so a client can fix them and resend. Served
records are kept only in memory as histogram counts (for drift), unless
``log_dir`` is given: then every answered request's records are appended to
``<log_dir>/served-YYYYMMDD.jsonl`` (personal data: the folder is 0700).
"""

# No postponed annotations: FastAPI must see the real Request class of the endpoint.
import io
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.errors import MissingExtraError
from server.serving.monitor import DriftMonitor
from server.serving.records import check_records, encode_records

if TYPE_CHECKING:  # the models hold torch modules; the service itself needs no torch import
    from server.serving.follow import ProductionModel
    from server.serving.model import ServedModel

MAX_BODY_BYTES = 1_000_000
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def create_app(
    model: "ServedModel | ProductionModel",
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_dir: Path | None = None,
) -> Any:
    """A FastAPI app answering ``POST /predict``, ``GET /health``, ``/model``, ``/metrics``.

    Parameters
    ----------
    model : the model, its contract, card and drift reference; or the production
        alias of a state folder, followed from request to request.
    max_body_bytes : larger request bodies get 413.
    log_dir : where to append served records (None: they are not stored).
    """
    try:
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse, Response
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError as err:  # pragma: no cover - depends on the install
        raise MissingExtraError("serving needs fastapi: pip install 'fedlife[serve]'") from err

    registry = CollectorRegistry()
    metrics = _metrics(registry)
    lock = threading.Lock()
    # Drift is measured against the training histograms of the model being served:
    # a promotion starts a new monitor.
    current: dict[str, Any] = {}

    def serving() -> "tuple[ServedModel, DriftMonitor]":
        served = model.current()
        with lock:
            if current.get("model") is not served:
                current["model"] = served
                current["monitor"] = DriftMonitor(
                    served.spec, served.reference, served.drift_threshold
                )
                metrics["class_counts"] = dict.fromkeys(served.spec.classes, 0)
            return served, current["monitor"]

    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = FastAPI(title="fedlife model")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/model")
    def card() -> dict:
        return serving()[0].card

    @app.get("/metrics")
    def prometheus() -> Any:
        _, monitor = serving()
        with lock:
            drift = monitor.drift()
            counts = dict(metrics["class_counts"])
        for column, value in drift.items():
            if value is not None:
                metrics["drift"].labels(feature=column).set(value)
        total = sum(counts.values())
        for name in counts:
            metrics["share"].labels(**{"class": name}).set(counts[name] / total if total else 0)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        start = time.perf_counter()
        answer = _answer(await request.body(), request.headers.get("content-type", ""))
        metrics["requests"].labels(status=str(answer.status_code)).inc()
        metrics["latency"].observe(time.perf_counter() - start)
        return answer

    def _answer(body: bytes, content_type: str) -> Any:
        if len(body) > max_body_bytes:
            return JSONResponse({"detail": f"body over {max_body_bytes} bytes"}, status_code=413)
        records = _parse(body, content_type)
        if isinstance(records, str):
            return JSONResponse({"detail": records}, status_code=422)
        served, monitor = serving()
        spec = served.spec
        clean, errors = check_records(spec, records)
        if errors:
            detail = [{"record": e.record, "field": e.field, "reason": e.reason} for e in errors]
            return JSONResponse({"detail": detail}, status_code=422)
        probabilities = served.predict_proba(encode_records(spec, clean))
        predicted = [spec.classes[int(i)] for i in np.argmax(probabilities, axis=1)]
        with lock:
            monitor.observe(clean)
            counts = metrics["class_counts"]
            for name in predicted:
                counts[name] = counts.get(name, 0) + 1
        metrics["records"].inc(len(clean))
        if log_dir is not None:
            _log(log_dir, clean)
        return JSONResponse(
            [
                {"class": c, "probabilities": dict(zip(spec.classes, map(float, p), strict=True))}
                for c, p in zip(predicted, probabilities, strict=True)
            ]
        )

    return app


def _parse(body: bytes, content_type: str) -> list | str:
    """The records of a JSON list or CSV body, or why they cannot be read."""
    if "csv" in content_type:
        import polars as pl

        try:
            frame = pl.read_csv(io.BytesIO(body), infer_schema=False)
        except pl.exceptions.PolarsError as error:
            return f"body is not CSV ({str(error).splitlines()[0]})"
        return frame.to_dicts()
    try:
        records = json.loads(body)
    except ValueError:
        return "body is not JSON (send a list of records, or CSV with content-type text/csv)"
    if not isinstance(records, list):
        return "body must be a list of records"
    return records


def _metrics(registry: Any) -> dict[str, Any]:
    from prometheus_client import Counter, Gauge, Histogram

    return {
        "requests": Counter(
            "fedlife_predict_requests", "POST /predict requests", ["status"], registry=registry
        ),
        "records": Counter("fedlife_predict_records", "records answered", registry=registry),
        "latency": Histogram(
            "fedlife_predict_seconds",
            "time to answer POST /predict",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "drift": Gauge(
            "fedlife_input_drift_psi",
            "PSI of served records against the federation's training histograms",
            ["feature"],
            registry=registry,
        ),
        "share": Gauge(
            "fedlife_predicted_class_share",
            "share of answered records predicted as each class",
            ["class"],
            registry=registry,
        ),
        "class_counts": {},
    }


def _log(log_dir: Path, records: list[dict]) -> None:
    now = datetime.now(UTC)
    line = json.dumps({"time": now.isoformat(timespec="seconds"), "records": records})
    path = log_dir / f"served-{now:%Y%m%d}.jsonl"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
