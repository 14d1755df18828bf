"""The evaluation's F1 and AUC equal scikit-learn's, ties and absent classes included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import f1_score, roc_auc_score

from common.evaluation import binary_auc, macro_f1

labels = st.lists(st.integers(0, 3), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(labels, st.integers(0, 2**32 - 1))
def test_macro_f1_is_scikit_learns(truth, seed):
    truth = np.array(truth)
    predicted = np.random.default_rng(seed).integers(0, 4, len(truth))
    expected = f1_score(truth, predicted, average="macro", zero_division=0)
    assert macro_f1(truth, predicted) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=60), st.integers(0, 2**32 - 1))
def test_binary_auc_is_scikit_learns_with_ties(positive, seed):
    positive = np.array(positive)
    # Scores on a coarse grid, so that many tie.
    score = np.random.default_rng(seed).integers(0, 5, len(positive)) / 4
    if positive.all() or not positive.any():
        assert np.isnan(binary_auc(positive, score))
        return
    expected = roc_auc_score(positive, score)
    assert binary_auc(positive, score) == pytest.approx(expected, abs=1e-12)


def test_a_perfect_and_a_reversed_ranking():
    positive = np.array([False, False, True, True])
    assert binary_auc(positive, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert binary_auc(positive, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert binary_auc(positive, np.full(4, 0.5)) == 0.5


def test_one_vs_rest_auc_with_a_class_absent_is_nan_as_in_scikit_learn():
    from torch import nn

    from common.evaluation import evaluate_model

    model = nn.Linear(2, 3)
    x = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
    y = np.array([0, 1] * 6)  # class 2 never occurs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        probabilities = nn.functional.softmax(model(__import__("torch").tensor(x)), dim=1)
        expected = roc_auc_score(
            y, probabilities.detach().numpy(), multi_class="ovr", labels=range(3)
        )
    assert np.isnan(expected) and np.isnan(evaluate_model(model, x, y)["auc"])
