"""A bare Flower + Opacus app, no lifecycle: the baseline of ``bench_overhead.py``.

Sites hold their rows as arrays in memory (the same seeded split fedlife's virtual
sites get, without dirt), train with Opacus DP-SGD and answer; the server runs
Flower's FedAvg with a central evaluation. In a module of its own so Ray's workers
import it by name.
"""

from __future__ import annotations

import time
from functools import cache

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from opacus import PrivacyEngine
from opacus.accountants.utils import get_noise_multiplier
from torch.utils.data import DataLoader, TensorDataset

from common.evaluation import evaluate_model
from common.features import FeatureSpec
from common.models import build_model
from simulations.data.datasets import breast_cancer
from simulations.data.dirt import DirtSpec
from simulations.data.materialise import split_rows
from simulations.spec import SimulationSpec

EPSILON, DELTA, BATCH, LR, MOMENTUM, CLIP = 3.0, 1e-5, 16, 1.0, 0.5, 1.0
SEED = 0


def spec_for(sites: int, rounds: int, run_dir: str) -> SimulationSpec:
    # No dirt: the bare app's sites hold exactly the rows fedlife's sites keep.
    clean = DirtSpec(duplicates=0.0, missing=0.0, outliers=0.0)
    return SimulationSpec(
        sites=sites,
        rounds=rounds,
        epsilon=EPSILON,
        delta=DELTA,
        seed=SEED,
        run_dir=run_dir,
        dirt=clean,
        run_options={"batch_size": BATCH, "learning_rate": LR, "momentum": MOMENTUM},
    )


@cache
def bare_data(sites: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple]:
    """Each site's (x, y) and the test split: the same rows fedlife's sites get, clean."""
    data = breast_cancer()
    split = split_rows(spec_for(sites, 1, ""), data)
    encode = FeatureSpec(
        data.features,
        [lo for lo, _ in data.ranges.values()],
        [hi for _, hi in data.ranges.values()],
        data.label,
        ["0", "1"],
        [data.scales[n] for n in data.features],
    ).encode
    train = data.frame[split.train_rows.tolist()]
    parts = [encode(train[p.tolist()]) for p in split.parts]
    return parts, encode(data.frame[split.test_rows.tolist()])


@cache
def noise_for(rate: float, steps: int) -> float:
    """Opacus's noise multiplier for epsilon 3 over the run, searched once per process."""
    return get_noise_multiplier(
        target_epsilon=EPSILON, target_delta=DELTA, sample_rate=rate, steps=steps
    )


def bare_client_app(sites: int, rounds: int) -> ClientApp:
    app = ClientApp()

    @app.train()
    def fit(message: Message, context: Context) -> Message:
        x, y = bare_data(sites)[0][int(context.node_config["partition-id"])]
        model = build_model("logreg", x.shape[1], 2)
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), BATCH)
        sigma = noise_for(1 / len(loader), rounds * len(loader))
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        private, optimizer, loader = PrivacyEngine().make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=CLIP,
            poisson_sampling=True,
        )
        losses = []
        for features, labels in loader:
            optimizer.zero_grad()
            # Poisson sampling may draw an empty batch: it still steps (adds noise).
            logits = private(features)
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
            loss = loss / max(len(labels), 1)
            loss.backward()
            if len(labels):
                losses.append(loss.item())
            optimizer.step()
        state = {k: v.detach() for k, v in private._module.state_dict().items()}
        metrics = MetricRecord({"num-examples": len(y), "train-loss": float(np.mean(losses))})
        content = RecordDict({"arrays": ArrayRecord(state), "metrics": metrics})
        return Message(content, reply_to=message)

    @app.evaluate()
    def assess(message: Message, context: Context) -> Message:
        x, y = bare_data(sites)[0][int(context.node_config["partition-id"])]
        model = build_model("logreg", x.shape[1], 2)
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        metrics = evaluate_model(model, x, y)
        metrics["num-examples"] = len(y)
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=message)

    return app


def bare_server_app(sites: int, rounds: int, stamps: list[float]) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        x_test, y_test = bare_data(sites)[1]
        model = build_model("logreg", x_test.shape[1], 2, SEED)

        def central(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            model.load_state_dict(arrays.to_torch_state_dict())
            metrics = MetricRecord(evaluate_model(model, x_test, y_test))
            if server_round > 0:  # FedAvg also evaluates the initial model (round 0)
                stamps.append(time.monotonic())
            return metrics

        FedAvg(min_available_nodes=sites).start(
            grid,
            ArrayRecord(model.state_dict()),
            num_rounds=rounds,
            train_config=ConfigRecord({}),
            evaluate_fn=central,
        )

    return app
