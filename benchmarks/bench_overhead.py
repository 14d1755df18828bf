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
first round's imports are left out. Each app runs twice, in the order bare,
fedlife, fedlife, bare (the machine's load drifts); the median over all rounds
2..N of both runs is reported.

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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.bare_app import (  # noqa: E402
    EPSILON,
    bare_client_app,
    bare_server_app,
    spec_for,
)
from simulations.ray_runtime import private_ray  # noqa: E402
from simulations.runner import quiet_flower, run  # noqa: E402


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
    # A B B A: the machine's load drifts; alternating spreads it over both apps.
    gaps: dict[str, list[float]] = {"bare": [], "fedlife": []}
    with tempfile.TemporaryDirectory(prefix="fedlife-overhead-") as folder:
        for index, app in enumerate(("bare", "fedlife", "fedlife", "bare")):
            if app == "bare":
                stamps = bare_run(args.sites, args.rounds)
            else:
                stamps = fedlife_run(args.sites, args.rounds, f"{folder}/run-{index}")
            gaps[app] += per_round(stamps)[1]
    bare_s, bare_gaps = statistics.median(gaps["bare"]), gaps["bare"]
    fedlife_s, fedlife_gaps = statistics.median(gaps["fedlife"]), gaps["fedlife"]
    table = Table(
        title=f"per-round time, {args.sites} sites, {args.rounds} rounds, DP eps {EPSILON}"
    )
    table.add_column("app")
    table.add_column("median s/round", justify="right")
    table.add_column("rounds timed", justify="right")
    table.add_column("min / max s", justify="right")
    for name, median, gaps in (("fedlife", fedlife_s, fedlife_gaps), ("bare", bare_s, bare_gaps)):
        table.add_row(name, f"{median:.3f}", str(len(gaps)), f"{min(gaps):.2f} / {max(gaps):.2f}")
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
