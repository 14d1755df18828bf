"""Local DP-SGD training with Opacus returns plain weights and the steps it took."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from client.federation.training import TrainPlan, sample_rate, steps_per_round, train
from common.evaluation import evaluate_model
from common.models import build_model


def separable(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two features in [-1, 1]; the label is which side of x0 + x1 = 0 a row lies."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def plan(**overrides) -> TrainPlan:
    fields = {
        "epochs": 2,
        "batch_size": 16,
        "learning_rate": 0.5,
        "max_grad_norm": 1.0,
        "noise_multiplier": 1.0,
        "seed": 0,
    }
    fields.update(overrides)
    return TrainPlan(**fields)


def weights_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model_name", ["logreg", "mlp"])
def test_dp_training_returns_unwrapped_state_dict(model_name):
    x, y = separable(50)
    model = build_model(model_name, 2, 2)
    keys = set(model.state_dict())

    outcome = train(model, x, y, plan())

    assert set(outcome.state_dict) == keys
    assert not any(k.startswith("_module.") for k in outcome.state_dict)
    assert math.isfinite(outcome.loss)
    # The returned weights load into a fresh, unwrapped model.
    build_model(model_name, 2, 2).load_state_dict(outcome.state_dict)


def test_steps_and_sample_rate_follow_the_batch_count():
    x, y = separable(50)  # ceil(50 / 16) = 4 batches

    outcome = train(build_model("logreg", 2, 2), x, y, plan(epochs=3))

    assert outcome.steps == 3 * 4 == steps_per_round(50, plan(epochs=3))
    assert outcome.sample_rate == pytest.approx(1 / 4)
    assert sample_rate(50, 16) == pytest.approx(1 / 4)


def test_training_is_deterministic_for_a_seed():
    x, y = separable(60)

    first = train(build_model("logreg", 2, 2), x, y, plan(seed=7)).state_dict
    again = train(build_model("logreg", 2, 2), x, y, plan(seed=7)).state_dict
    other = train(build_model("logreg", 2, 2), x, y, plan(seed=8)).state_dict

    assert weights_equal(first, again)
    assert not weights_equal(first, other)


def test_training_moves_the_weights():
    x, y = separable(60)
    model = build_model("logreg", 2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    outcome = train(model, x, y, plan())

    assert not weights_equal(before, outcome.state_dict)


def test_tiny_dataset_samples_everything_each_step():
    x, y = separable(3)

    outcome = train(build_model("logreg", 2, 2), x, y, plan(epochs=2, batch_size=16))

    assert outcome.sample_rate == 1.0
    assert outcome.steps == 2
    assert all(torch.isfinite(v).all() for v in outcome.state_dict.values())


def test_dp_training_learns_a_separable_problem():
    x, y = separable(400)
    x_test, y_test = separable(200, seed=1)
    model = build_model("logreg", 2, 2)

    outcome = train(model, x, y, plan(epochs=5, batch_size=32, learning_rate=1.0))

    fresh = build_model("logreg", 2, 2)
    fresh.load_state_dict(outcome.state_dict)
    metrics = evaluate_model(fresh, x_test, y_test)
    assert metrics["accuracy"] > 0.8
    assert metrics["auc"] > 0.8


def test_training_without_noise():
    x, y = separable(200)
    model = build_model("logreg", 2, 2)

    outcome = train(model, x, y, plan(noise_multiplier=None, epochs=3))

    assert set(outcome.state_dict) == set(build_model("logreg", 2, 2).state_dict())
    assert outcome.steps == 3 * math.ceil(200 / 16)
    assert math.isfinite(outcome.loss)
    fresh = build_model("logreg", 2, 2)
    fresh.load_state_dict(outcome.state_dict)
    assert evaluate_model(fresh, x, y)["accuracy"] > 0.9


def distance_from_start(noise_multiplier: float | None, mu: float) -> float:
    x, y = separable(100)
    start = build_model("logreg", 2, 2).state_dict()
    weights = train(
        build_model("logreg", 2, 2), x, y, plan(noise_multiplier=noise_multiplier, proximal_mu=mu)
    ).state_dict
    return sum(float((weights[k] - start[k]).pow(2).sum()) for k in start)


def test_proximal_term_keeps_weights_nearer_the_start_without_dp():
    assert distance_from_start(None, 1.0) < 0.5 * distance_from_start(None, 0.0)


def test_proximal_term_keeps_weights_nearer_the_start_with_dp():
    assert distance_from_start(0.5, 1.0) < 0.5 * distance_from_start(0.5, 0.0)


@pytest.mark.parametrize("model_name", ["logreg", "mlp"])
@pytest.mark.parametrize("mode", ["ew", "functorch"])
def test_every_grad_sample_mode_takes_the_same_dp_steps_as_hooks(model_name, mode):
    x, y = separable(80)
    hooks = train(build_model(model_name, 2, 2), x, y, plan(grad_sample_mode="hooks"))
    other = train(build_model(model_name, 2, 2), x, y, plan(grad_sample_mode=mode))

    assert other.steps == hooks.steps
    for key, value in hooks.state_dict.items():
        torch.testing.assert_close(other.state_dict[key], value, atol=1e-5, rtol=0)
    assert not weights_equal(hooks.state_dict, build_model(model_name, 2, 2).state_dict())
