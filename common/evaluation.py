"""Metrics of a model on encoded rows, computed the same way at sites and server.

F1 and AUC are computed here rather than by scikit-learn: its import costs more CPU
than a whole evaluation, and a deployed site starts a fresh ClientApp process for
every message. ``tests/common/test_evaluation.py`` holds them to scikit-learn's values.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss, accuracy, F1 (macro) and AUC (one-vs-rest, macro) of ``model`` on (x, y).

    AUC is left out when ``y`` holds one class only, and is NaN when some class of the
    model's outputs is absent from ``y`` (as scikit-learn reports it).
    """
    model.eval()
    logits = model(torch.tensor(x))
    labels = torch.tensor(y)
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(axis=1)
    metrics = {
        "loss": float(nn.functional.cross_entropy(logits, labels).item()),
        "accuracy": float((predictions == y).mean()),
        "f1": macro_f1(y, predictions),
    }
    if len(np.unique(y)) > 1:
        if probabilities.shape[1] == 2:
            metrics["auc"] = binary_auc(y == 1, probabilities[:, 1])
        else:
            one_vs_rest = [binary_auc(y == k, p) for k, p in enumerate(probabilities.T)]
            metrics["auc"] = float(np.mean(one_vs_rest))
    return metrics


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 averaged over the classes that occur in ``truth`` or ``predicted``."""
    scores = []
    for c in np.union1d(truth, predicted):
        hits = np.sum((predicted == c) & (truth == c))
        scores.append(2.0 * hits / (np.sum(truth == c) + np.sum(predicted == c)))
    return float(np.mean(scores)) if scores else 0.0


def binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outranks a negative (ties count half).

    NaN when ``positive`` is all true or all false.
    """
    positives = int(np.sum(positive))
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, tie_group, tie_size = np.unique(score, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(tie_size)
    ranks = (last_rank - (tie_size - 1) / 2.0)[tie_group]  # tied scores share their mean rank
    rank_sum = ranks[positive].sum() - positives * (positives + 1) / 2
    return float(rank_sum / (positives * negatives))
