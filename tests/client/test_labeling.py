"""Labeling at the site: the labeled table, imports, weak labels, the queue, label quality."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from client.cli import app
from client.federation.global_model import load_global_model
from client.labeling.active import queue_after_round, select, uncertainty
from client.labeling.importing import import_labels
from client.labeling.label_model import ABSTAIN, LabelModel
from client.labeling.labels import given_labels, labeled_rows
from client.labeling.weak import weak_labels
from client.pipeline.prepare import prepare
from client.sealed_files import read_file
from client.site import Site
from client.store import SiteStore
from common.config import load_site_config
from common.errors import ConfigError
from common.models import build_model
from common.run_config import RunConfig
from server.registry.registry import Registry
from server.run_dir import RunDirectory
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site

ROWS, HIDDEN, FLIPPED = 300, 0.7, 8
TABLES = ("raw", "quarantine", "clean", "unlabeled", "labeled", "queue")
FUNCTIONS = """
[labeling]
threshold = 0.8

[[labeling.functions]]
name = "large"
when = "worst_radius > 18"
label = "0"

[[labeling.functions]]
name = "small"
when = "worst_radius < 13"
label = "1"

[[labeling.functions]]
name = "concave"
when = "worst_concave_points > 0.17"
label = "0"

[[labeling.functions]]
name = "smooth"
when = "worst_concave_points < 0.09"
label = "1"
"""


def _row_ids(n: int) -> list[str]:
    return [f"data.csv:{line}" for line in range(2, n + 2)]


def _build_site(
    root: Path, *, flip: bool = False, hidden: float = HIDDEN
) -> tuple[Path, pl.DataFrame]:
    """A breast-cancer site with most labels missing; returns site.toml and the truth."""
    dataset = breast_cancer()
    rows = dataset.frame.sample(n=ROWS, shuffle=True, seed=0)
    truth = pl.DataFrame({"row_id": _row_ids(ROWS), "truth": rows["diagnosis"].cast(pl.String)})
    hide = np.random.default_rng(0).random(ROWS) < hidden
    label = pl.when(pl.Series(hide)).then(None).otherwise(pl.col("diagnosis"))
    if flip:  # a few wrong labels among the visible ones
        shown = np.flatnonzero(~hide)[:FLIPPED]
        wrong = np.zeros(ROWS, bool)
        wrong[shown] = True
        label = pl.when(pl.Series(wrong)).then(1 - pl.col("diagnosis")).otherwise(label)
    path = write_site(root, 0, rows.with_columns(label.alias("diagnosis")), dataset, None, 1e-5)
    path.write_text(path.read_text() + FUNCTIONS)
    prepare(load_site_config(path))
    return path, truth


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, pl.DataFrame]:
    return _build_site(tmp_path_factory.mktemp("labeling"))


@pytest.fixture
def site(built, tmp_path) -> Path:
    """A private copy of the prepared site (its store included)."""
    source, _ = built
    shutil.copytree(source.parent, tmp_path / "site")
    return tmp_path / "site" / "site.toml"


@pytest.fixture
def truth(built) -> pl.DataFrame:
    return built[1]


def _store(path: Path) -> SiteStore:
    return SiteStore(path.parent / "store")


def _versions(path: Path) -> dict[str, int | None]:
    store = _store(path)
    return {t: (v.version if (v := store.latest(t)) else None) for t in TABLES}


def _export_model(site_toml: Path, out: Path) -> tuple[Path, Path]:
    """A run directory with one checkpoint, and its export (as the coordinator writes)."""
    spec = Site.from_path(site_toml).declared_spec()
    run = RunDirectory.create(out / "run")
    run.start(RunConfig(num_server_rounds=1, model="logreg").to_flower())
    run.update_info(feature_spec=spec.to_json(), profile_excluded=[])
    state = build_model("logreg", spec.num_features, spec.num_classes, seed=1).state_dict()
    run.save_checkpoint(1, {f"_module.{k}": v for k, v in state.items()}, {})
    Registry(run.path).export(None, out / "export")
    return run.path, out / "export"


def _label_file(path: Path, rows: dict[str, object]) -> Path:
    if path.suffix == ".parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:
        pl.DataFrame(rows).write_csv(path)
    return path


def test_unlabeled_rows_are_set_aside_with_stable_ids(built):
    site, _ = built  # in place: prepare keys its inputs by absolute path
    store = _store(site)
    clean, unlabeled = store.read("clean"), store.read("unlabeled")
    assert clean.height + unlabeled.height == ROWS
    assert clean["diagnosis"].null_count() == 0
    assert unlabeled["diagnosis"].null_count() == unlabeled.height
    assert sorted(clean["_row_id"].to_list() + unlabeled["_row_id"].to_list()) == sorted(
        _row_ids(ROWS)
    )
    before = _versions(site)
    assert prepare(load_site_config(site)).unchanged
    assert _versions(site) == before
    frame, version = Site.from_path(site).clean
    assert frame.height == clean.height and version.version == 0


def test_import_applies_valid_labels_and_reports_the_rest(site, truth, tmp_path):
    store = _store(site)
    config = load_site_config(site)
    targets = store.read("unlabeled")["_row_id"].head(6).to_list()
    answers = truth.filter(pl.col("row_id").is_in(targets))
    file = _label_file(
        tmp_path / "labels.csv",
        {
            "row_id": [*answers["row_id"], "no-such-row", targets[0], targets[1]],
            "label": [*answers["truth"], "1", "7", "1" if answers["truth"][1] == "0" else "0"],
            "annotator": ["ann"] * 6 + ["ann", "other", "ann"],
        },
    )
    report = import_labels(store, config, file)

    assert report.unknown_ids == ["no-such-row"]
    assert report.unknown_classes == {"7": 1}
    assert report.conflicting_ids == [targets[1]]
    assert report.applied == {"manual": 5}
    given = given_labels(store)
    assert set(given["_row_id"]) == set(targets) - {targets[1]}
    assert set(given["source"]) == {"manual"} and set(given["annotator"]) == {"ann"}
    lineage = store.latest("labeled").lineage
    assert lineage["operation"] == "label-import" and lineage["annotators"] == '["ann"]'
    assert lineage["time"] and lineage["unknown_ids"] == "1"
    trained = Site(config).clean[0]
    assert trained.height == store.read("clean").height + 5
    assert trained["diagnosis"].null_count() == 0


def test_human_labels_beat_weak_and_raw_labels(site, tmp_path):
    store = _store(site)
    config = load_site_config(site)
    weak = weak_labels(store, config, 0.8, apply=True)
    assert weak.version.version == 0
    weak_row = given_labels(store)["_row_id"][0]
    raw_row, raw_label = store.read("clean").select("_row_id", "diagnosis").row(0)
    other = {"0": "1", "1": "0"}
    weak_label = given_labels(store).filter(pl.col("_row_id") == weak_row)["label"][0]
    # Two of three annotators overrule the weak label; one corrects a raw label.
    file = _label_file(
        tmp_path / "l.parquet",
        {
            "row_id": [weak_row, weak_row, weak_row, raw_row],
            "label": [other[weak_label], other[weak_label], weak_label, other[str(raw_label)]],
            "annotator": ["a", "b", "c", "a"],
        },
    )
    import_labels(store, config, file)
    rows = labeled_rows(store, config, sources=True)
    by_id = {r["_row_id"]: r for r in rows.iter_rows(named=True)}
    assert str(by_id[weak_row]["diagnosis"]) == other[weak_label]
    assert by_id[weak_row]["_label_source"] == "manual"
    assert str(by_id[raw_row]["diagnosis"]) == other[str(raw_label)]
    assert store.read("labeled", 0).height == weak.labeled  # earlier version intact


def test_label_model_learns_accuracies_from_agreement():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 4000)
    accuracies, coverage = [0.95, 0.9, 0.85, 0.55], [0.6, 0.6, 0.5, 0.8]
    votes = np.full((truth.size, 4), ABSTAIN)
    for j, (accuracy, share) in enumerate(zip(accuracies, coverage)):
        voting = rng.random(truth.size) < share
        right = rng.random(truth.size) < accuracy
        votes[voting, j] = np.where(right, truth, 1 - truth)[voting]
    model = LabelModel(2).fit(votes)
    assert model.accuracies[3] < min(model.accuracies[:3]) - 0.15
    labels, confidence = model.predict(votes, 0.0)
    covered = labels != ABSTAIN
    assert (labels[covered] == truth[covered]).mean() > 0.9
    strict, _ = model.predict(votes, 0.99)
    assert 0 < (strict != ABSTAIN).sum() < covered.sum()
    assert np.all((confidence >= 0.5) & (confidence <= 1))


def test_weak_labels_are_accurate_and_respect_the_threshold(site, truth):
    store = _store(site)
    config = load_site_config(site)
    preview = weak_labels(store, config, 0.8, apply=False)
    assert store.latest("labeled") is None  # looking applies nothing
    table = preview.functions
    assert table["function"].to_list() == ["large", "small", "concave", "smooth"]
    assert table["coverage"].min() > 0.1 and (table["conflicts"] <= table["overlaps"]).all()
    assert table["estimated_accuracy"].min() > 0.8 and table["measured_accuracy"].min() > 0.85

    applied = weak_labels(store, config, 0.8, apply=True)
    weak = given_labels(store).join(truth, left_on="_row_id", right_on="row_id")
    assert weak.height == applied.labeled > 0.5 * applied.candidates
    assert (weak["label"] == weak["truth"]).mean() > 0.9
    strict = weak_labels(store, config, 0.999, apply=True)
    assert strict.labeled < applied.labeled
    assert given_labels(store).height == strict.labeled  # weak labels replaced, not added
    assert store.latest("labeled").version == 1


def test_uncertainty_and_diverse_selection():
    probabilities = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.99, 0.01]])
    assert np.argsort(-uncertainty(probabilities, "entropy")).tolist() == [0, 2, 1, 3]
    assert np.allclose(uncertainty(probabilities, "margin"), [1.0, 0.2, 0.8, 0.02])
    # Two tight clusters of equally uncertain rows: diversity takes one from each.
    features = np.array([[0.0], [0.01], [0.02], [5.0], [5.01]])
    flat = np.full((5, 2), 0.5)
    assert set(select(flat, features, 2, diverse=True).tolist()) == {0, 4}
    assert select(flat, features, 2).tolist() == [0, 1]


def test_queue_from_a_run_dir_and_an_export_then_import_as_active(site, truth, tmp_path):
    run_dir, export = _export_model(site, tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["label", "queue", "-c", str(site), "--model", str(export), "--size", "6", "--json"]
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    queue = _store(site).read("queue")
    assert found["rows"] == queue.height == 6
    assert queue["score"].to_list() == sorted(queue["score"].to_list(), reverse=True)
    unlabeled = set(_store(site).read("unlabeled")["_row_id"])
    assert set(queue["_row_id"]) <= unlabeled
    sealed = Path(found["csv"])
    assert sealed.name.endswith(".csv.sealed")
    assert queue["_row_id"][0].encode() not in sealed.read_bytes()
    opened = runner.invoke(app, ["open", str(sealed), "-c", str(site)])  # for the annotator
    assert opened.exit_code == 0, opened.output
    sheet = pl.read_csv(io.StringIO(opened.stdout), infer_schema=False)
    assert sheet["row_id"].to_list() == queue["_row_id"].to_list()
    assert "diagnosis" not in sheet.columns and set(sheet["label"].fill_null("")) == {""}

    # The annotator answers four of six; a run dir (newest checkpoint) scores too.
    answered = sheet.drop("label").join(truth, on="row_id").rename({"truth": "label"})
    answered = answered.with_columns(
        pl.when(pl.col("rank").cast(pl.Int64) <= 4).then("label").otherwise(None).alias("label")
    )
    answered.write_csv(tmp_path / "answers.csv")
    result = runner.invoke(app, ["label", "import", str(tmp_path / "answers.csv"), "-c", str(site)])
    assert result.exit_code == 0, result.output
    assert "4 active" in result.stdout and "2 row(s) without a label" in result.stdout
    assert set(given_labels(_store(site))["source"]) == {"active"}
    args = ["label", "queue", "-c", str(site), "--model", str(run_dir), "--size", "3"]
    result = runner.invoke(app, [*args, "--strategy", "margin", "--diverse", "--json"])
    assert result.exit_code == 0, result.output
    assert not set(_store(site).read("queue")["_row_id"]) & set(answered["row_id"].head(4))


def test_quality_flags_flipped_labels_and_measures_agreement(tmp_path, truth):
    site, _ = _build_site(tmp_path, flip=True, hidden=0.3)
    store = _store(site)
    shared = store.read("unlabeled")["_row_id"].head(12).to_list()
    answers = truth.filter(pl.col("row_id").is_in(shared))
    import_labels(
        store,
        load_site_config(site),
        _label_file(tmp_path / "a.csv", {"row_id": answers["row_id"], "label": answers["truth"]}),
        annotator="a",
    )
    noisy = [t if i % 4 else {"0": "1", "1": "0"}[t] for i, t in enumerate(answers["truth"])]
    import_labels(
        store,
        load_site_config(site),
        _label_file(tmp_path / "b.csv", {"row_id": answers["row_id"], "label": noisy}),
        annotator="b",
    )
    before = _versions(site)
    result = CliRunner().invoke(app, ["label", "quality", "-c", str(site), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert _versions(site) == before  # nothing dropped, nothing written to the tables
    clean = store.read("clean").join(truth, left_on="_row_id", right_on="row_id")
    flipped = set(clean.filter(pl.col("diagnosis").cast(pl.String) != pl.col("truth"))["_row_id"])
    assert len(flipped) == FLIPPED
    report = read_file(store.root, Path(found["report"]))
    suspected = set(pl.read_csv(io.BytesIO(report), infer_schema=False)["_row_id"])
    assert len(flipped & suspected) >= FLIPPED // 2
    assert len(suspected) < 4 * FLIPPED
    assert {b["class"] for b in found["balance"]} == {"0", "1"}
    assert sum(b["rows"] for b in found["balance"]) == found["rows"]
    pair = found["agreement"]["cohen"]["a vs b"]
    assert pair["rows"] == 12 and 0 < pair["kappa"] < 1
    assert found["agreement"]["fleiss"]["rows"] == 12


@pytest.mark.parametrize(
    "case",
    [
        "no id column",
        "empty file",
        "header only",
        "bad function",
        "unknown column",
        "no model",
        "not a model",
        "bad strategy",
    ],
)
def test_bad_input_is_one_line_and_changes_no_table(site, tmp_path, case, assert_one_line_error):
    files = {
        "no id column": ("id,label\ndata.csv:2,1\n", "no 'row_id' column"),
        "empty file": ("", "labels file is empty"),
        "header only": ("row_id,label\n", "labels file has no rows"),
    }
    if case in files:
        text, needle = files[case]
        (tmp_path / "labels.csv").write_text(text)
        args = ["label", "import", str(tmp_path / "labels.csv"), "-c", str(site)]
    elif case == "no model":
        args, needle = ["label", "queue", "-c", str(site)], "pass --model PATH"
    elif case == "not a model":
        (tmp_path / "model.pt").write_text("not a model")
        args = ["label", "queue", "-c", str(site), "--model", str(tmp_path / "model.pt")]
        needle = "not an exported fedlife model"
    elif case == "bad strategy":
        _, export = _export_model(site, tmp_path)
        args = ["label", "queue", "-c", str(site), "--model", str(export), "--strategy", "vibes"]
        needle = "unknown strategy 'vibes'"
    else:
        when, needle = {
            "bad function": ("worst_radius >>> 18", "does not parse"),
            "unknown column": ("tumour_size > 3", "unknown column(s) ['tumour_size']"),
        }[case]
        site.write_text(site.read_text().replace("worst_radius > 18", when))
        args = ["label", "functions", "-c", str(site), "--apply"]
    before = _versions(site)
    result = CliRunner().invoke(app, args)
    as_process = subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
    assert_one_line_error(as_process, needle)
    assert _versions(site) == before


def test_queue_without_unlabeled_rows_is_refused(tmp_path, cli, assert_one_line_error):
    site, _ = _build_site(tmp_path, hidden=0.0)
    _, export = _export_model(site, tmp_path)
    before = _versions(site)
    result = cli("fedlife-site", "label", "queue", "-c", site, "--model", export)
    assert_one_line_error(result, "no unlabeled rows to queue")
    assert _versions(site) == before


def test_functions_are_checked_against_the_schema(site):
    site.write_text(site.read_text().replace('label = "1"', 'label = "benign"', 1))
    config = load_site_config(site)
    with pytest.raises(ConfigError, match="label 'benign' is not one of"):
        weak_labels(_store(site), config, 0.8, apply=False)


def test_the_client_app_queues_after_a_round_only_when_asked(site, tmp_path):
    _, export = _export_model(site, tmp_path)
    model, store, config = load_global_model(export), _store(site), load_site_config(site)
    assert queue_after_round(store, config, model, 0) is None
    assert store.latest("queue") is None
    queue = queue_after_round(store, config, model, 4)
    assert queue.version.version == 0 and queue.rows.height == 4
    assert json.loads(store.latest("queue").lineage["size"]) == 4
