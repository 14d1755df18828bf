"""Model factories: the one place both sides build the same architecture."""

from __future__ import annotations

import torch
from torch import nn

from common.errors import ConfigError


def logistic_regression(num_features: int, num_classes: int) -> nn.Module:
    """A linear layer; the strongest choice under DP on small tabular data."""
    return nn.Linear(num_features, num_classes)


def mlp(num_features: int, num_classes: int, hidden: int = 32) -> nn.Module:
    """One hidden layer with ReLU."""
    return nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


MODELS = {"logreg": logistic_regression, "mlp": mlp}


def build_model(name: str, num_features: int, num_classes: int, seed: int = 0) -> nn.Module:
    """Build model ``name`` with weights drawn from ``seed``."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; expected one of {sorted(MODELS)}")
    torch.manual_seed(seed)
    return MODELS[name](num_features, num_classes)
