"""``fedlife-coord serve``, ``predict``, ``monitor`` and ``models register``.

Models (and torch with them) load inside the commands: every other ``fedlife-coord``
command imports this module too.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import polars as pl
import typer

from common.cli import one_line_errors
from common.errors import DataError, MissingExtraError, ServingError
from server.serving.monitor import DriftMonitor
from server.serving.records import check_records, encode_records
from server.serving.service import MAX_BODY_BYTES, create_app

MODEL_HELP = (
    "A run directory, an exported model folder, or a coordinator state folder "
    "(its production model, followed across promotions)."
)
ROUND = typer.Option(None, "--round", help="The checkpoint's round (default: the last).")


def serve_command(
    run_dir: Path = typer.Argument(..., help=MODEL_HELP),
    server_round: int | None = ROUND,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    log_requests: Path | None = typer.Option(
        None,
        "--log-requests",
        help="Append served records to DIR/served-YYYYMMDD.jsonl (personal data!).",
    ),
    max_body_bytes: int = typer.Option(
        MAX_BODY_BYTES, "--max-body-bytes", help="Larger bodies: 413."
    ),
) -> None:
    """Serve a model over HTTP: POST /predict on raw records, /health, /model, /metrics."""
    from server.serving.follow import open_model

    model = open_model(run_dir, server_round=server_round)
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("serve needs uvicorn: pip install 'fedlife[serve]'") from None

    # uvicorn logs a bind failure and exits without an exception we could word.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ServingError(f"{host}:{port}: cannot listen ({error.strerror})") from None
    app = create_app(model, max_body_bytes=max_body_bytes, log_dir=log_requests)
    # One request's model is small: torch's intra-op threads cost more than they give
    # (256 records: 0.07 ms on one thread, 0.65 ms on two, far worse on a busy machine).
    import torch

    torch.set_num_threads(1)
    following = " (following the production alias)" if model is not model.current() else ""
    typer.echo(f"serving {model.current().source}{following} on http://{host}:{port}", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


def predict_command(
    run_dir: Path = typer.Argument(..., help=MODEL_HELP),
    input_csv: Path = typer.Option(..., "--input", help="Raw records (a site's CSV columns)."),
    output_csv: Path = typer.Option(..., "--output", help="Where to write the predictions."),
    server_round: int | None = ROUND,
) -> None:
    """Score a CSV of raw records without a server: predicted class and probabilities."""
    from server.serving.follow import open_model

    model = open_model(run_dir, server_round=server_round).current()
    records = _read_csv(input_csv)
    clean, errors = check_records(model.spec, records)
    if errors:
        first = errors[0]
        raise DataError(
            f"{input_csv}: {len(errors)} record(s) cannot be scored; first: row "
            f"{first.record + 1}, column '{first.field}': {first.reason}"
        )
    probabilities = model.predict_proba(encode_records(model.spec, clean))
    classes = model.spec.classes
    out = pl.DataFrame(records).with_columns(
        pl.Series("predicted", [classes[i] for i in probabilities.argmax(axis=1)]),
        *(pl.Series(f"probability_{c}", probabilities[:, i]) for i, c in enumerate(classes)),
    )
    out.write_csv(output_csv)
    typer.echo(f"{len(records)} records scored -> {output_csv}", err=True)


def monitor_command(
    run_dir: Path = typer.Argument(..., help=MODEL_HELP),
    served: Path = typer.Option(
        ..., "--served", help="A --log-requests folder or one of its served-*.jsonl files."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write the section here (else stdout)."),
    server_round: int | None = ROUND,
) -> None:
    """Drift of served records against the federation's training histograms."""
    from server.serving.follow import open_model

    model = open_model(run_dir, server_round=server_round).current()
    monitor = DriftMonitor(model.spec, model.reference, model.drift_threshold)
    for records in _served_records(served):
        clean, _ = check_records(model.spec, records)
        monitor.observe(clean)
    if not model.reference:
        raise ServingError(f"{run_dir}: no training histograms (statistics.json) to compare to")
    section = monitor.section()
    if out is None:
        typer.echo(section)
    else:
        out.write_text(section)
        typer.echo(f"drift of {monitor.records} served records -> {out}", err=True)


def register_command(
    run_dir: Path = typer.Argument(..., help="The run directory."),
    tracking_uri: str = typer.Option(..., "--tracking-uri", help="e.g. sqlite:///mlflow.db"),
    name: str = typer.Option("fedlife", "--name", help="Registered model name."),
    server_round: int | None = ROUND,
) -> None:
    """Log a run to MLflow and register its model as a pyfunc on raw records."""
    from server.serving.mlflow_model import register_run

    version = register_run(run_dir, tracking_uri=tracking_uri, name=name, server_round=server_round)
    print(json.dumps(version))


def register(app: typer.Typer, models_app: typer.Typer) -> None:
    """Add the serving commands to ``fedlife-coord`` and its ``models`` group."""
    app.command("serve")(one_line_errors(serve_command))
    app.command("predict")(one_line_errors(predict_command))
    app.command("monitor")(one_line_errors(monitor_command))
    models_app.command("register")(one_line_errors(register_command))


def _read_csv(path: Path) -> list[dict]:
    try:
        return pl.read_csv(path, infer_schema=False).to_dicts()
    except (OSError, pl.exceptions.PolarsError) as error:
        raise DataError(f"{path}: cannot read CSV ({str(error).splitlines()[0]})") from None


def _served_records(path: Path) -> list[list[dict]]:
    files = sorted(path.glob("served-*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ServingError(f"{path}: no served-records log (served-*.jsonl)")
    batches = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            try:
                batches.append(json.loads(line)["records"])
            except (ValueError, KeyError, TypeError):
                raise ServingError(f"{file}: line {number} is not a served-records line") from None
    return batches
