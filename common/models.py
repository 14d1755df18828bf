"""Model factories: the one place both sides build the same architecture."""

from __future__ import annotations

import math

import torch
from torch import nn

from common.errors import ConfigError


def logistic_regression(num_features: int, num_classes: int) -> nn.Module:
    """A linear layer; the strongest choice under DP on small tabular data."""
    return nn.Linear(num_features, num_classes)


def mlp(num_features: int, num_classes: int, hidden: int = 32) -> nn.Module:
    """One hidden layer with ReLU."""
    return nn.Sequential(nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def small_cnn(num_features: int, num_classes: int, channels: int = 8) -> nn.Module:
    """Two 3x3 convolutions over a square image given as ``side * side`` pixels.

    Built for scikit-learn's 8x8 digits. Opacus computes per-sample gradients of
    Conv2d, GroupNorm and Linear; BatchNorm mixes samples, so GroupNorm stands in
    for it (``ModuleValidator`` accepts the model as it is).
    """
    side = math.isqrt(num_features)
    if side * side != num_features or side < 4:
        raise ConfigError(f"model 'cnn' needs a square image of >= 16 pixels, got {num_features}")
    wide = 2 * channels
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, channels, 3, padding=1),
        nn.GroupNorm(2, channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, wide, 3, padding=1),
        nn.GroupNorm(2, wide),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(wide * (side // 4) ** 2, num_classes),
    )


MODELS = {"logreg": logistic_regression, "mlp": mlp, "cnn": small_cnn}


def build_model(name: str, num_features: int, num_classes: int, seed: int = 0) -> nn.Module:
    """Build model ``name`` with weights drawn from ``seed``."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; expected one of {sorted(MODELS)}")
    torch.manual_seed(seed)
    return MODELS[name](num_features, num_classes)
