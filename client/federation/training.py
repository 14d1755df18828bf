"""Local training with Opacus DP-SGD."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Poisson sampling draws an empty batch now and then; that is expected, not news.
logging.getLogger("opacus.data_loader").setLevel(logging.ERROR)
# Opacus's hooks need no input gradients; torch warns about that on every step.
warnings.filterwarnings("ignore", message="Full backward hook is firing")


@dataclass(frozen=True)
class TrainPlan:
    """How a site trains each round.

    Parameters
    ----------
    epochs : local epochs per round.
    batch_size : expected batch size; the Poisson sample rate is 1 / ceil(n / batch_size).
    learning_rate : SGD step size.
    max_grad_norm : per-sample gradient clipping bound.
    noise_multiplier : Gaussian noise / clipping bound; None trains without DP.
    grad_sample_mode : Opacus per-sample gradient mode.
    proximal_mu : FedProx proximal term towards the global weights (0 = off).
    momentum : SGD momentum (post-processing of the noisy gradients: free in privacy).
    seed : seeds the batches of training without DP (and, without a ``generator``,
        of DP training: tests only).
    """

    epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    noise_multiplier: float | None
    grad_sample_mode: str = "hooks"
    proximal_mu: float = 0.0
    momentum: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class TrainOutcome:
    state_dict: dict[str, torch.Tensor]
    steps: int
    sample_rate: float
    loss: float


def sample_rate(num_examples: int, batch_size: int) -> float:
    """Opacus's Poisson rate for a loader of this size (one over its batch count)."""
    return 1.0 / math.ceil(num_examples / batch_size)


def steps_per_round(num_examples: int, plan: TrainPlan) -> int:
    return plan.epochs * math.ceil(num_examples / plan.batch_size)


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    plan: TrainPlan,
    *,
    generator: torch.Generator | None = None,
) -> TrainOutcome:
    """Train ``model`` in place on (x, y); return the plain (unwrapped) weights.

    ``generator`` draws DP-SGD's Poisson batches and Gaussian noise; a site passes one
    from its secret (``client.privacy.randomness``), never one the server could seed.
    """
    # Opacus takes a second to import; a deployed site starts a fresh ClientApp
    # process per message and most messages never train.
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    torch.manual_seed(plan.seed)
    generator = generator or torch.Generator().manual_seed(plan.seed)
    if not ModuleValidator.is_valid(model):
        model = ModuleValidator.fix(model)
    global_weights = [p.detach().clone() for p in model.parameters()]
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=plan.batch_size,
        shuffle=True,
        generator=generator,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=plan.learning_rate, momentum=plan.momentum)
    trained = model
    engine = None
    if plan.noise_multiplier is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure-RNG advice: noted in the README
            engine = PrivacyEngine(accountant="rdp")
            trained, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=plan.noise_multiplier,
                max_grad_norm=plan.max_grad_norm,
                poisson_sampling=True,
                grad_sample_mode=plan.grad_sample_mode,
                noise_generator=generator,
            )
        # Opacus's noise that resists floating-point attacks (a sum of four draws);
        # its own secure_mode would also demand torchcsprng, which this torch lacks,
        # and the generator is already secret.
        optimizer.secure_mode = True
    losses, steps = [], 0
    trained.train()
    for _ in range(plan.epochs):
        for features, labels in loader:
            optimizer.zero_grad()
            # Poisson sampling can draw an empty batch; it must still step (and add
            # noise), so its loss is a zero that keeps the graph, not a NaN mean.
            batch = max(len(labels), 1)
            loss = nn.functional.cross_entropy(trained(features), labels, reduction="sum") / batch
            loss.backward()
            if len(labels):
                losses.append(loss.item())
            optimizer.step()
            if plan.proximal_mu > 0:
                _proximal_step(model, global_weights, plan.learning_rate * plan.proximal_mu)
            steps += 1
    if engine is not None:
        # The accountant's own record of what ran is what the ledger must hold.
        assert sum(n for _, _, n in engine.accountant.history) == steps
    rate = sample_rate(len(y), plan.batch_size)
    inner = cast(torch.nn.Module, trained._module if hasattr(trained, "_module") else trained)
    state = {k: v.detach().clone() for k, v in inner.state_dict().items()}
    return TrainOutcome(state, steps, rate, float(np.mean(losses)) if losses else math.nan)


@torch.no_grad()
def _proximal_step(model: nn.Module, global_weights: list[torch.Tensor], rate: float) -> None:
    """FedProx's pull towards the global weights, as a step of its own.

    The proximal term depends on no row, so it needs no clipping or noise; Opacus
    builds the DP update from per-sample gradients only and would drop it from the
    loss, so it is applied after the DP step instead.
    """
    for weight, start in zip(model.parameters(), global_weights):
        weight.sub_(rate * (weight - start))
