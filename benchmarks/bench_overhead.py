"""Per-round overhead of fedlife against a bare Flower + Opacus app, in one run.

Both federations run on Flower's simulation engine in this process (a private Ray
each), over the same sites (the same seeded split of breast cancer), the same model
(logistic regression), the same DP-SGD settings (batch 16, one local epoch, clip
1.0, epsilon 3 at delta 1e-5 over the rounds) and the same client resources.

* fedlife: ``fedlife-sim run`` (``simulations.runner.run``): each site reads its
  Delta table, checks its gate and ledger, trains, records the steps, keeps the
  released update; the server evaluates federated and centrally and checkpoints.
* bare: the ClientApp / ServerApp below: arrays in memory, Opacus, Flower's FedAvg
  with a central evaluation, nothing else.

Per-round time is measured from round timestamps: the time between the ends of
consecutive rounds (fedlife: its round observer; bare: FedAvg's per-round central
evaluation callback), so Ray start-up, actor start, the profile round and the
first round's imports are left out. The median over rounds 2..N is reported.

    python benchmarks/bench_overhead.py [--sites 5] [--rounds 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from opacus import PrivacyEngine  # noqa: E402
from opacus.accountants.utils import get_noise_multiplier  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from common.evaluation import evaluate_model  # noqa: E402
from common.features import FeatureSpec  # noqa: E402
from common.models import build_model  # noqa: E402
from simulations.datasets import breast_cancer  # noqa: E402
from simulations.dirt import DirtSpec  # noqa: E402
from simulations.materialise import split_rows  # noqa: E402
from simulations.ray_runtime import private_ray  # noqa: E402
from simulations.runner import SimulationSpec, quiet_flower, run  # noqa: E402

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


def bare_client_app(sites: int, rounds: int) -> ClientApp:
    app = ClientApp()

    @app.train()
    def fit(message: Message, context: Context) -> Message:
        x, y = bare_data(sites)[0][int(context.node_config["partition-id"])]
        model = build_model("logreg", x.shape[1], 2)
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), BATCH)
        rate = 1 / len(loader)
        sigma = get_noise_multiplier(
            target_epsilon=EPSILON, target_delta=DELTA, sample_rate=rate, steps=rounds * len(loader)
        )
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


def bare_run(sites: int, rounds: int) -> list[float]:
    from flwr.simulation import run_simulation

    quiet_flower()
    stamps: list[float] = []
    with private_ray() as init_args:
        run_simulation(
            server_app=bare_server_app(sites, rounds, stamps),
            client_app=bare_client_app(sites, rounds),
            num_supernodes=sites,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": init_args},
        )
    return stamps


def fedlife_run(sites: int, rounds: int, folder: str) -> list[float]:
    stamps: list[float] = []
    run(spec_for(sites, rounds, folder), on_round=lambda report: stamps.append(time.monotonic()))
    return stamps


def per_round(stamps: list[float]) -> tuple[float, list[float]]:
    """Median time between the ends of consecutive rounds (round 2 onwards)."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps), gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="fedlife-overhead-") as folder:
        bare_s, bare_gaps = per_round(bare_run(args.sites, args.rounds))
        fedlife_s, fedlife_gaps = per_round(fedlife_run(args.sites, args.rounds, folder + "/run"))
    table = Table(
        title=f"per-round time, {args.sites} sites, {args.rounds} rounds, DP eps {EPSILON}"
    )
    table.add_column("app")
    table.add_column("median s/round", justify="right")
    table.add_column("rounds 2..N (s)")
    for name, median, gaps in (("fedlife", fedlife_s, fedlife_gaps), ("bare", bare_s, bare_gaps)):
        table.add_row(name, f"{median:.3f}", " ".join(f"{g:.2f}" for g in gaps))
    Console().print(table)
    figures = {
        "sites": args.sites,
        "rounds": args.rounds,
        "fedlife_round_s": round(fedlife_s, 4),
        "bare_round_s": round(bare_s, 4),
        "ratio": round(fedlife_s / bare_s, 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
