"""Metrics of a model on encoded rows, computed the same way at sites and server."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def evaluate_model(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss, accuracy, F1 (macro) and AUC (one-vs-rest) of ``model`` on (x, y)."""
    # scikit-learn takes half a second to import, and a deployed site starts a fresh
    # ClientApp process per message: only the ones that evaluate pay for it.
    from sklearn.metrics import f1_score, roc_auc_score

    model.eval()
    logits = model(torch.tensor(x))
    labels = torch.tensor(y)
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(axis=1)
    metrics = {
        "loss": float(nn.functional.cross_entropy(logits, labels).item()),
        "accuracy": float((predictions == y).mean()),
        "f1": float(f1_score(y, predictions, average="macro", zero_division=0)),
    }
    if len(np.unique(y)) > 1:
        if probabilities.shape[1] == 2:
            metrics["auc"] = float(roc_auc_score(y, probabilities[:, 1]))
        else:
            metrics["auc"] = float(
                roc_auc_score(
                    y, probabilities, multi_class="ovr", labels=range(probabilities.shape[1])
                )
            )
    return metrics
