"""Encrypted aggregation's cost per round: the demo model and the digits CNN.

    .venv/bin/python benchmarks/bench_he.py [--sites 5] [--rounds 4]

One federated round, in one process, as the ServerApp and ClientApps do it minus
Flower's transport: every site trains one epoch of DP-SGD
(``client.federation.training.train``, noise multiplier 1.0, clipping 1.0) on its
share of the data, then the update is aggregated

* plaintext: FedAvg's example-weighted mean of the float32 arrays;
* HE: each site encrypts its weights (``client.privacy.he.encrypt``), the coordinator
  forms the weighted sum of ciphertexts with the public context only
  (``server.he_aggregation.weighted_sum``), each site decrypts the global model.

Rounds with and without HE alternate (HE first on odd rounds), from the same model and
the same seeds; ``ratio`` is the fastest HE round over the fastest plaintext round (the
fastest, not the median: on a shared machine the other processes only ever add time).
``he_overhead_s`` is the fastest round's encrypt + sum + decrypt alone.
``bytes_per_update`` is what one site sends per round (the serialised ciphertexts;
plaintext: 4 bytes per float). ``max_abs_diff`` is the largest difference between the
decrypted HE aggregate and plaintext FedAvg of the same updates. The demo model is
``logreg`` on breast_cancer (the default of ``fedlife-sim run``); the CNN is the digits
dataset's. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.he_app_rounds import app_rounds  # noqa: E402
from client.federation.training import TrainPlan, train  # noqa: E402
from client.privacy import he  # noqa: E402
from common.models import build_model  # noqa: E402
from server.he_aggregation import load_public_context, weighted_sum  # noqa: E402
from simulations.data.datasets import breast_cancer, digits  # noqa: E402

CASES = (
    ("demo: logreg, breast_cancer", breast_cancer, "logreg", 0.5),
    ("cnn, digits", digits, "cnn", 0.2),
)


def arrays(loader):
    """Features scaled to [0, 1] by the public ranges, labels as class indices."""
    data = loader()
    names = list(data.ranges)
    x = data.frame.select(names).to_numpy().astype(np.float32)
    low = np.array([data.ranges[n][0] for n in names], dtype=np.float32)
    high = np.array([data.ranges[n][1] for n in names], dtype=np.float32)
    x = (x - low) / np.where(high > low, high - low, 1)
    y = data.frame[data.label].to_numpy().astype(np.int64)
    return x, y, int(y.max()) + 1


def local_updates(model_name, weights, parts, classes, learning_rate, server_round):
    updates = []
    for i, (x, y) in enumerate(parts):
        model = build_model(model_name, x.shape[1], classes)
        model.load_state_dict(weights)
        plan = TrainPlan(1, 32, learning_rate, 1.0, 1.0, seed=1000 * server_round + i)
        outcome = train(model, x, y, plan)
        updates.append((outcome.state_dict, float(len(y))))
    return updates


def plain_round(updates):
    total = sum(n for _, n in updates)
    names = updates[0][0].keys()
    return {k: sum(sd[k] * (n / total) for sd, n in updates) for k in names}


def he_round(secret, public, updates, template):
    started = time.perf_counter()
    encrypted = [(he.encrypt(secret, he.flatten(sd)), n) for sd, n in updates]
    summed = weighted_sum(public, encrypted)
    sites_view = he.decrypt_state(secret, summed, template)  # each site decrypts the same
    return sites_view, sum(len(c) for c in encrypted[0][0]), time.perf_counter() - started


def bench(label, loader, model_name, learning_rate, sites, rounds, app_rounds_n):
    x, y, classes = arrays(loader)
    order = np.random.default_rng(0).permutation(len(y))
    parts = [(x[idx], y[idx]) for idx in np.array_split(order, sites)]
    secret = he.make_secret_context()
    public = load_public_context(he.public_bytes(secret))
    weights = build_model(model_name, x.shape[1], classes, seed=0).state_dict()
    times = {"plain": [], "he": []}
    diffs, size, overheads = [], 0, []
    for server_round in range(1, rounds + 1):
        ordering = ("he", "plain") if server_round % 2 else ("plain", "he")
        results = {}
        for kind in ordering:
            started = time.perf_counter()
            updates = local_updates(
                model_name, weights, parts, classes, learning_rate, server_round
            )
            if kind == "he":
                results[kind], size, overhead = he_round(secret, public, updates, weights)
                overheads.append(overhead)
            else:
                results[kind] = plain_round(updates)
            times[kind].append(time.perf_counter() - started)
        diffs.append(
            max(float((results["he"][k] - results["plain"][k]).abs().max()) for k in weights)
        )
        weights = results["plain"]
    plain_s, he_s = min(times["plain"]), min(times["he"])
    values = sum(t.numel() for t in weights.values())
    apps = app_rounds(loader(), model_name, learning_rate, sites, app_rounds_n)
    return {
        "app_plain_round_s": apps["plain_round_s"],
        "app_he_round_s": apps["he_round_s"],
        "app_ratio": apps["he_round_s"] / apps["plain_round_s"],
        "case": label,
        "values": values,
        "plain_round_s": plain_s,
        "he_round_s": he_s,
        "ratio": he_s / plain_s,
        "he_overhead_s": min(overheads),
        "bytes_per_update": size,
        "plain_bytes_per_update": 4 * values,
        "max_abs_diff": max(diffs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--app-rounds", type=int, default=4, help="rounds through the ClientApp")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Opacus's notices would bury the table
    rows = [bench(*case, args.sites, args.rounds, args.app_rounds) for case in CASES]
    table = Table(title=f"encrypted aggregation, {args.sites} sites, {args.rounds} rounds")
    for column in (
        "model",
        "values",
        "app round s: plain",
        "HE",
        "ratio",
        "training round s: plain",
        "HE",
        "ratio",
        "HE work s",
        "bytes/update",
        "max |HE - plain|",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["case"],
            str(r["values"]),
            f"{r['app_plain_round_s']:.3f}",
            f"{r['app_he_round_s']:.3f}",
            f"{r['app_ratio']:.2f}",
            f"{r['plain_round_s']:.3f}",
            f"{r['he_round_s']:.3f}",
            f"{r['ratio']:.2f}",
            f"{r['he_overhead_s']:.3f}",
            f"{r['bytes_per_update']:,} (plain {r['plain_bytes_per_update']:,})",
            f"{r['max_abs_diff']:.1e}",
        )
    Console(width=160).print(table)  # readable when piped into a file, too
    demo, cnn = rows
    print(
        json.dumps(
            {
                "ratio": round(demo["app_ratio"], 3),
                "cnn_app_ratio": round(cnn["app_ratio"], 3),
                "training_ratio": round(demo["ratio"], 3),
                "bytes_per_update": demo["bytes_per_update"],
                "max_abs_diff": max(demo["max_abs_diff"], cnn["max_abs_diff"]),
                "cnn_training_ratio": round(cnn["ratio"], 3),
                "demo_app_plain_round_s": round(demo["app_plain_round_s"], 4),
                "demo_app_he_round_s": round(demo["app_he_round_s"], 4),
                "cnn_bytes_per_update": cnn["bytes_per_update"],
                "demo_he_overhead_s": round(demo["he_overhead_s"], 4),
                "cnn_he_overhead_s": round(cnn["he_overhead_s"], 4),
                "demo_plain_round_s": round(demo["plain_round_s"], 4),
                "demo_he_round_s": round(demo["he_round_s"], 4),
                "cnn_plain_round_s": round(cnn["plain_round_s"], 4),
                "cnn_he_round_s": round(cnn["he_round_s"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
