"""Fairness: a planted group disparity shows in the merged metrics; a balanced one does not.

Real sites (raw CSV, ``prepare``, Delta), the functions the ClientApp's evaluate
handler calls on each site's rows, and the server's merge of what they send.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from client.federation.assessment import fairness_stats, permutation_importance, predictions
from client.federation.training import TrainPlan, train
from client.pipeline.prepare import prepare
from client.site import Site
from common.config import load_site_config
from common.features import FeatureSpec
from common.models import build_model
from common.stats import TableStats
from server.fairness import merge_fairness, merge_importance
from simulations.data.datasets import synthetic_groups
from simulations.data.sites import write_site

SITES, ROWS = 2, 600


def _federation(root, disparity: float) -> dict:
    """Two sites of synthetic data; a logistic model trained on their rows; evaluated."""
    dataset = synthetic_groups(rows=SITES * ROWS, disparity=disparity, seed=7)
    paths = [
        write_site(root, i, dataset.frame[i * ROWS : (i + 1) * ROWS], dataset, 3.0, 1e-5)
        for i in range(SITES)
    ]
    for path in paths:
        prepare(load_site_config(path))
    sites = [Site.from_path(p) for p in paths]
    spec, _ = FeatureSpec.merge([s.declared_spec() for s in sites])
    data = [s.data(spec, 0) for s in sites]
    x = np.concatenate([d.x_train for d in data])
    y = np.concatenate([d.y_train for d in data])
    model = build_model("logreg", spec.num_features, spec.num_classes, 0)
    plan = TrainPlan(
        epochs=5, batch_size=32, learning_rate=0.5, max_grad_norm=1.0, noise_multiplier=None
    )
    weights = train(model, x, y, plan).state_dict

    fairness, importance = {}, {}
    for site, rows in zip(sites, data):
        # what the ClientApp's evaluate handler sends for its evaluation rows
        model.load_state_dict(weights)
        k = site.config.quality.min_group_size
        predicted = predictions(model, rows.x_train)
        fairness[site.name] = fairness_stats(
            rows.y_train, predicted, rows.groups_train, spec.num_classes - 1, k
        )
        found = permutation_importance(model, rows.x_train, rows.y_train, spec, 0, k)
        importance[site.name] = (json.dumps(found), len(rows.y_train))
    return {
        "fairness": merge_fairness(fairness),
        "importance": merge_importance(importance),
        "sent": fairness,
        "rows": sum(len(rows.y_train) for rows in data),
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _federation(tmp_path_factory.mktemp("planted"), disparity=1.5)


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    return _federation(tmp_path_factory.mktemp("balanced"), disparity=0.0)


def test_planted_disparity_shows_per_site_and_federated(planted):
    federated = planted["fairness"]["federated"]["group"]
    assert federated["demographic_parity_difference"] > 0.25
    rates = federated["groups"]
    assert rates["b"]["selection_rate"] > rates["a"]["selection_rate"] + 0.25
    # Every evaluated row counted once (generated: no duplicates); with privacy on a
    # tenth of each site's rows is held out.
    assert rates["a"]["rows"] + rates["b"]["rows"] == planted["rows"] < SITES * ROWS
    for site in planted["fairness"]["per_site"].values():
        assert site["group"]["demographic_parity_difference"] > 0.15


def test_balanced_groups_show_no_disparity(balanced):
    federated = balanced["fairness"]["federated"]["group"]
    assert federated["demographic_parity_difference"] < 0.08
    assert federated["equalized_odds_difference"] < 0.1
    assert federated["accuracy_difference"] < 0.08


def test_only_group_aggregates_leave_and_importance_finds_the_driver(planted):
    for text in planted["sent"].values():
        for name, column in TableStats.from_json(text).columns.items():
            assert column.count >= 10 and (column.nulls == 0 or column.nulls >= 10), name
    ranked = list(planted["importance"]["federated"])
    assert ranked[0] == "x0"  # the feature the label depends on most
    assert set(ranked) == {f"x{i}" for i in range(12)} | {"region"}
