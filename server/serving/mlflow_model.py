"""A run in MLflow: its params, metrics and plots, and its model as a raw-record pyfunc.

:func:`register_run` logs a run directory to an MLflow tracking server (any URI,
e.g. ``sqlite:///mlflow.db`` offline) and registers the model as a pyfunc whose
``predict`` takes a DataFrame of RAW records (the sites' column names and values)
and encodes them with the model's own feature contract, as the service does; the
lineage (sites, table versions, run id, config hash, epsilon) goes on the model
version as tags. MLflow is the optional extra ``fedlife[mlflow]``.
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from common.errors import MissingExtraError
from server.registry.registry import Registry
from server.serving.bundle import serving_files
from server.serving.card import CARD_MD

ARTIFACTS = ("accuracy.png", "loss.png", "epsilon.png", "report.html", "statistics.json")
# What the pyfunc needs at load time, pinned to the versions it was logged with.
REQUIREMENTS = ("torch", "polars", "numpy", "pandas")


def _mlflow() -> Any:
    try:
        import mlflow
        import mlflow.pyfunc  # noqa: F401 - loads the submodule register_run uses
    except ImportError:
        raise MissingExtraError("MLflow is an extra: pip install 'fedlife[mlflow]'") from None
    return mlflow


def register_run(
    run_dir: str | Path, *, tracking_uri: str, name: str, server_round: int | None = None
) -> dict[str, Any]:
    """Log ``run_dir`` to MLflow and register its model; return name, version and run id.

    Parameters
    ----------
    run_dir : the run directory.
    tracking_uri : the MLflow tracking URI (``sqlite:///path`` works offline).
    name : the registered model's name.
    server_round : the checkpoint's round (None: the last).
    """
    mlflow = _mlflow()
    from server.serving.mlflow_pyfunc import BUNDLE, RawRecordModel

    registry = Registry(run_dir)
    record, _, _ = registry.load(server_round)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("fedlife")
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / BUNDLE
        registry.export(record.round, bundle, extra=serving_files(registry))
        with mlflow.start_run(run_name=f"{record.run_id}-round-{record.round}") as run:
            mlflow.log_params({k: str(v)[:500] for k, v in sorted(registry.config.items())})
            for line in registry.run.completed_rounds():
                step = int(line.get("round", 0))
                for scope in ("federated", "central"):
                    for key, value in (line.get(scope) or {}).items():
                        if isinstance(value, int | float) and value == value:
                            mlflow.log_metric(f"{scope}_{key}", float(value), step=step)
            for site, spent in record.epsilon.items():
                if spent is not None:
                    mlflow.log_metric(f"epsilon_{site}", spent)
            for artifact in ARTIFACTS:
                if (registry.run.path / artifact).is_file():
                    mlflow.log_artifact(str(registry.run.path / artifact))
            mlflow.log_artifact(str(bundle / CARD_MD))
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RawRecordModel(),
                artifacts={BUNDLE: str(bundle)},
                registered_model_name=name,
                pip_requirements=_requirements(),
            )
    tags = {
        "fedlife.run_id": record.run_id,
        "fedlife.round": str(record.round),
        "fedlife.config_hash": record.config_hash,
        "fedlife.sites": json.dumps(
            {s["site"]: s["table_version"] for s in record.sites}, sort_keys=True
        ),
        "fedlife.epsilon": json.dumps(record.epsilon, sort_keys=True),
    }
    client = mlflow.MlflowClient()
    model_version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, model_version, key, value)
    return {
        "name": name,
        "version": model_version,
        "mlflow_run_id": run.info.run_id,
        "model_uri": f"models:/{name}/{model_version}",
    }


def _requirements() -> list[str]:
    pinned = []
    for package in REQUIREMENTS:
        try:
            pinned.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pinned.append(package)
    return pinned
