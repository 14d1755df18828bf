"""Serving a real run: the service on raw CSV records, drift, ONNX, MLflow, bad input.

One short ``fedlife-sim run`` on the heart-disease hospitals (missing markers 'NA',
categories cp and restecg) serves every test here. Run under the e2e lock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from client.federation.global_model import load_global_model
from client.store import CLEAN, ROW_ID, SiteStore
from common.features import FeatureSpec
from server.cli import app
from simulations.data.heart_disease import find_data_dir
from tests.conftest import new_cli_env
from tests.e2e.conftest import free_port, run_cli, script, stop_processes_mentioning

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        find_data_dir() is None, reason="needs ../shared/datasets/uci_heart_disease"
    ),
]
httpx = pytest.importorskip("httpx")
prometheus_parser = pytest.importorskip("prometheus_client.parser")
typer_testing = pytest.importorskip("typer.testing")


@pytest.fixture(scope="module")
def env():
    env = new_cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    yield env
    for path in (env["FLWR_HOME"], env["RAY_TMPDIR"]):
        stop_processes_mentioning(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, env) -> Path:
    run_dir = tmp_path_factory.mktemp("serve") / "run"
    args = ["run", "--dataset", "heart_disease", "--sites", "3", "--rounds", "1", "--seed", "2"]
    result = run_cli([script("fedlife-sim"), *args, "--run-dir", str(run_dir), "--json"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def raw_rows(run_dir: Path) -> list[tuple[str, dict]]:
    """(site, raw record with its _row_id) of every site's raw CSV, values as text."""
    rows = []
    for site in sorted((run_dir / "sites").iterdir()):
        frame = pl.read_csv(site / "raw" / "data.csv", infer_schema=False)
        for line, record in enumerate(frame.to_dicts(), start=2):
            rows.append((site.name, {**record, ROW_ID: f"data.csv:{line}"}))
    return rows


class Service:
    """``fedlife-coord serve`` in a subprocess on a free port."""

    def __init__(self, run_dir: Path, env: dict, *extra: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        command = [script("fedlife-coord"), "serve", str(run_dir), "--port", port, *extra]
        self.process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                if httpx.get(self.url + "/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the service did not come up in 40 s")

    def post(self, records: list[dict], **kwargs):
        return httpx.post(self.url + "/predict", content=json.dumps(records), **kwargs)

    def drift(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics").text
        families = {f.name: f for f in prometheus_parser.text_string_to_metric_families(text)}
        return {s.labels["feature"]: s.value for s in families["fedlife_input_drift_psi"].samples}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def spec_of(run_dir: Path) -> FeatureSpec:
    return FeatureSpec.from_json(json.loads((run_dir / "run.json").read_text())["feature_spec"])


def test_service_answers_raw_records_like_the_site_pipeline(run_dir, env, tmp_path):
    rows = raw_rows(run_dir)
    log = tmp_path / "log"
    service = Service(run_dir, env, "--log-requests", str(log), "--max-body-bytes", "100000")
    try:
        site = rows[0][0]
        records = [r for s, r in rows if s == site][:120]
        assert any("NA" in r.values() for r in records), "no missing marker in the sample"
        posted = [{k: v for k, v in r.items() if k != ROW_ID} for r in records]
        answer = service.post(posted)
        assert answer.status_code == 200, answer.text

        # The site's own path: its clean table (typed by its schema), encoded and scored
        # by the global model as a site loads it.
        clean = SiteStore(run_dir / "sites" / site / "store").read(CLEAN)
        wanted = [r[ROW_ID] for r in records]
        frame = clean.filter(pl.col(ROW_ID).is_in(wanted))
        assert frame.height >= 100
        site_proba = load_global_model(run_dir).predict_proba(frame)
        by_row = dict(zip(wanted, answer.json(), strict=True))
        classes = spec_of(run_dir).classes
        for row_id, expected in zip(frame.get_column(ROW_ID), site_proba, strict=True):
            got = [by_row[row_id]["probabilities"][c] for c in classes]
            np.testing.assert_allclose(got, expected, atol=1e-6)

        csv_body = pl.DataFrame(posted[:3]).write_csv()
        from_csv = httpx.post(
            service.url + "/predict", content=csv_body, headers={"content-type": "text/csv"}
        )
        for got, want in zip(from_csv.json(), answer.json()[:3], strict=True):
            assert got["class"] == want["class"]  # float32 sums differ with the batch size
            for c in classes:
                assert got["probabilities"][c] == pytest.approx(want["probabilities"][c], abs=1e-6)

        bad = [posted[0], {**posted[1], "cp": "9"}, {**posted[2], "age": "old"}]
        refused = service.post(bad)
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert [(d["record"], d["field"]) for d in detail] == [(1, "cp"), (2, "age")]
        assert service.post(posted * 10).status_code == 413

        card = httpx.get(service.url + "/model").json()
        assert card["run_id"] == json.loads((run_dir / "run.json").read_text())["run_id"]
        assert set(card["privacy"]["epsilon"]) == {s for s, _ in rows}
        text = httpx.get(service.url + "/metrics").text
        families = {f.name: f for f in prometheus_parser.text_string_to_metric_families(text)}
        requests = {
            s.labels["status"]: s.value
            for s in families["fedlife_predict_requests"].samples
            if s.name.endswith("_total")
        }
        assert requests == {"200": 2.0, "422": 1.0, "413": 1.0}
        shares = [s.value for s in families["fedlife_predicted_class_share"].samples]
        assert sum(shares) == pytest.approx(1.0)
    finally:
        service.stop()
    logged = [json.loads(line) for f in log.glob("served-*.jsonl") for line in f.open()]
    answered = len(posted) + 3  # the JSON and the CSV request, not the refused ones
    assert sum(len(entry["records"]) for entry in logged) == answered
    assert oct(log.stat().st_mode & 0o777) == "0o700"


def test_shifting_one_feature_raises_its_drift_only(run_dir, env, tmp_path):
    threshold = json.loads((run_dir / "run.json").read_text())["config"]["drift-threshold"]
    records = [{k: v for k, v in r.items() if k != ROW_ID} for _, r in raw_rows(run_dir)]
    spec = spec_of(run_dir)
    i = spec.features.index("age")
    ages = [float(r["age"]) for r in records if r["age"] != "NA"]
    # The spread of the plausible ages: the sites' injected outliers (700) are clipped.
    years = float(np.std([a for a in ages if spec.lows[i] <= a <= spec.highs[i]]))
    shifted = [
        {**r, "age": str(float(r["age"]) + 1.5 * years) if r["age"] != "NA" else "NA"}
        for r in records
    ]
    drifts = {}
    for name, batch in (("same", records), ("shifted", shifted)):
        service = Service(run_dir, env, "--log-requests", str(tmp_path / name))
        try:
            for start in range(0, len(batch), 256):
                assert service.post(batch[start : start + 256]).status_code == 200
            drifts[name] = service.drift()
        finally:
            service.stop()
    assert drifts["same"] and max(drifts["same"].values()) < 0.1, drifts["same"]
    assert drifts["shifted"]["age"] > threshold
    others = {k: v for k, v in drifts["shifted"].items() if k != "age"}
    assert max(others.values()) < 0.1, others

    runner = typer_testing.CliRunner()
    report = runner.invoke(app, ["monitor", str(run_dir), "--served", str(tmp_path / "shifted")])
    assert report.exit_code == 0, report.output
    assert "Flagged: age" in report.output
    calm = runner.invoke(app, ["monitor", str(run_dir), "--served", str(tmp_path / "same")])
    assert "Flagged: none" in calm.output


def test_export_onnx_predict_and_mlflow_agree(run_dir, tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    runner = typer_testing.CliRunner()
    bundle = tmp_path / "bundle"
    exported = runner.invoke(app, ["models", "export", str(run_dir), "--out", str(bundle)])
    assert exported.exit_code == 0, exported.output
    assert "## Privacy" in (bundle / "model_card.md").read_text()

    site = sorted((run_dir / "sites").iterdir())[0]
    raw = site / "raw" / "data.csv"
    scored = tmp_path / "scored.csv"
    result = runner.invoke(
        app, ["predict", str(bundle), "--input", str(raw), "--output", str(scored)]
    )
    assert result.exit_code == 0, result.output
    out = pl.read_csv(scored)
    classes = spec_of(run_dir).classes
    probabilities = out.select([f"probability_{c}" for c in classes]).to_numpy()

    # ONNX on the same rows, encoded by the contract, agrees with torch to 1e-5.
    spec = spec_of(run_dir)
    from server.serving.records import check_records, encode_records

    clean, errors = check_records(spec, pl.read_csv(raw, infer_schema=False).to_dicts())
    assert errors == []
    encoded = encode_records(spec, clean)
    (logits,) = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"encoded": encoded})
    scripted = torch.jit.load(str(bundle / "model.torchscript.pt"))
    with torch.no_grad():
        want = scripted(torch.from_numpy(encoded)).numpy()
    np.testing.assert_allclose(logits, want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        torch.softmax(torch.from_numpy(logits), 1).numpy(), probabilities, atol=1e-5
    )

    # The raw-column graph: the contract's scaling inside, the same logits (1e-5).
    inputs = json.loads((bundle / "raw_inputs.json").read_text())
    numeric = np.array(
        [[np.nan if r[c] is None else r[c] for c in inputs["numeric"]] for r in clean],
        dtype=np.float32,
    )
    categories = inputs["categories"]
    codes = np.array(
        [[-1 if r[c] is None else v.index(r[c]) for c, v in categories.items()] for r in clean],
        dtype=np.int64,
    )
    raw_session = ort.InferenceSession(str(bundle / "model_raw.onnx"))
    (raw_logits,) = raw_session.run(None, {"numeric": numeric, "categories": codes})
    np.testing.assert_allclose(raw_logits, want, atol=1e-5, rtol=0)

    mlflow = pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registered = runner.invoke(app, ["models", "register", str(run_dir), "--tracking-uri", uri])
    assert registered.exit_code == 0, registered.output
    version = json.loads(registered.stdout.strip().splitlines()[-1])
    mlflow.set_tracking_uri(uri)
    loaded = mlflow.pyfunc.load_model(version["model_uri"])
    frame = pl.read_csv(raw, infer_schema=False).to_pandas()
    answers = loaded.predict(frame)
    assert answers["predicted"].tolist() == out.get_column("predicted").cast(str).to_list()
    np.testing.assert_allclose(
        answers[[f"probability_{c}" for c in classes]].to_numpy(), probabilities, atol=1e-6
    )
    tags = mlflow.MlflowClient().get_model_version(version["name"], version["version"]).tags
    assert tags["fedlife.config_hash"] and site.name in json.loads(tags["fedlife.sites"])


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_one_line(run_dir, tmp_path):
    runner = typer_testing.CliRunner()
    one_line_error(runner.invoke(app, ["serve", str(run_dir), "--round", "9"]), "round 9")
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(run_dir / "run.json", empty / "run.json")
    one_line_error(runner.invoke(app, ["serve", str(empty)]), "no checkpoints")
    one_line_error(runner.invoke(app, ["serve", str(tmp_path / "nowhere")]), "nowhere")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        one_line_error(runner.invoke(app, ["serve", str(run_dir), "--port", port]), port)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("age,trestbps\n50,120\n")
    out = tmp_path / "out.csv"
    one_line_error(
        runner.invoke(
            app, ["predict", str(run_dir), "--input", str(bad_csv), "--output", str(out)]
        ),
        "row 1",
    )
    assert not out.exists()
