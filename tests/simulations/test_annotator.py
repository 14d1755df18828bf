"""The simulated annotator: hidden labels, answered from the truth through label import."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from client.federation.global_model import GlobalModel
from client.labeling.active import refresh_queue
from client.labeling.labels import given_labels
from client.pipeline.prepare import prepare
from client.site import Site
from common.config import load_site_config
from common.errors import ConfigError
from common.models import build_model
from simulations.data.annotator import ANNOTATOR, TRUTH, SimulatedAnnotator
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site
from simulations.spec import LabelingSpec


def _site(root, error_rate: float):
    dataset = breast_cancer()
    rows = dataset.frame.head(120)
    labeling = LabelingSpec(unlabeled=0.75, budget=7, error_rate=error_rate)
    hidden = labeling.hide(rows, dataset.label, root / "site-000", np.random.default_rng(0))
    path = write_site(root, 0, hidden, dataset, None, 1e-5)
    config = load_site_config(path)
    prepare(config)
    site = Site(config)
    spec = site.declared_spec()
    model = build_model("logreg", spec.num_features, spec.num_classes, seed=3)
    refresh_queue(site.store, config, GlobalModel(model, spec, "test"), 12)
    return path, site, pl.read_csv(path.parent / TRUTH, infer_schema=False)


@pytest.mark.parametrize("error_rate", [0.0, 1.0])
def test_annotator_answers_its_budget_from_the_truth(tmp_path, error_rate):
    path, site, truth = _site(tmp_path, error_rate)
    assert site.store.read("unlabeled").height == truth.height
    annotator = SimulatedAnnotator(str(tmp_path), budget=7, error_rate=error_rate, seed=0)

    assert annotator.answer(path) == 7
    assert annotator.answer(path) == 5  # the rest of the 12 queued rows
    assert annotator.answer(path) == 0
    given = given_labels(site.store).join(truth, left_on="_row_id", right_on="row_id")
    assert given.height == 12 and set(given["annotator"]) == {ANNOTATOR}
    assert set(given["source"]) == {"active"}
    right = (given["label"] == given["label_right"]).mean()
    assert right == (1.0 if error_rate == 0 else 0.0)
    assert LabelingSpec(unlabeled=0.75).spent(tmp_path) == {"labels_spent": {"site-000": 12}}


def test_labeling_spec_is_off_by_default_and_validated():
    assert LabelingSpec().run_options() == {} and LabelingSpec().mods("x", 0) == []
    assert LabelingSpec(unlabeled=0.5, budget=4).run_options() == {"label_queue_size": 4}
    with pytest.raises(ConfigError, match="--unlabeled"):
        LabelingSpec(unlabeled=1.5)
    with pytest.raises(ConfigError, match="--label-budget"):
        LabelingSpec(unlabeled=0.5, budget=0)
