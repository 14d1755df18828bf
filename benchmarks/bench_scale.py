"""Many virtual sites on one machine: wall time and peak memory of all processes.

Each run is a real ``fedlife-sim run`` (its own process, private Ray, DP-SGD at
epsilon 3) over a synthetic table written to a temp dir (``csv:PATH``: scikit-learn's
``make_classification``, 10 features, 24 rows per site of which 20 go to the site),
IID split. While it runs, the resident memory of the whole process tree (the CLI,
Ray's GCS, raylet, workers and Flower's actors) is summed every ``--sample-s``
seconds; the peak of that sum is ``peak_rss_mib``. RSS counts shared pages (torch's
libraries) once per process, so the figure is an upper bound.

    python benchmarks/bench_scale.py                    # 100 sites x 3 rounds, 1000 x 2
    python benchmarks/bench_scale.py --runs 20x2        # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import psutil
from rich.console import Console
from rich.table import Table
from sklearn.datasets import make_classification

REPO = Path(__file__).resolve().parents[1]
ROWS_PER_SITE = 24  # 20 train after the coordinator's 20 % test split
LIMIT_MIB = 8 * 1024


def write_table(path: Path, sites: int, seed: int = 0) -> Path:
    x, y = make_classification(
        n_samples=sites * ROWS_PER_SITE,
        n_features=10,
        n_informative=6,
        random_state=seed,
    )
    frame = pl.DataFrame(x.round(4), schema=[f"f{i}" for i in range(10)])
    frame.with_columns(label=pl.Series(y, dtype=pl.Int64)).write_csv(path)
    return path


def tree_rss(root: psutil.Process) -> int:
    """Resident bytes of ``root`` and every descendant still alive."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # it ended between listing and reading
            total += process.memory_info().rss
    return total


def run_one(sites: int, rounds: int, folder: Path, sample_s: float) -> dict:
    data = write_table(folder / f"table-{sites}.csv", sites)
    env = {
        **os.environ,
        "RAY_TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp"),
        "FLWR_HOME": tempfile.mkdtemp(prefix="flwr-"),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-c", "from simulations.cli import main; main()",
        "run", "--dataset", f"csv:{data}", "--sites", str(sites), "--rounds", str(rounds),
        "--partition", "iid",
        "--epsilon", "3", "--run-dir", str(folder / f"run-{sites}"), "--json",
    ]  # fmt: skip
    # Output goes to files: a 1000-site summary would fill a pipe nobody reads yet.
    out_path, err_path = folder / f"summary-{sites}.json", folder / f"stderr-{sites}.txt"
    started = time.monotonic()
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=err)
        root, peak = psutil.Process(process.pid), 0
        while process.poll() is None:
            peak = max(peak, tree_rss(root))
            time.sleep(sample_s)
    wall = time.monotonic() - started
    if process.returncode != 0:
        last = err_path.read_text().strip().splitlines()[-1:]
        sys.exit(f"{sites} sites x {rounds} rounds failed: {last}")
    summary = json.loads(out_path.read_text())
    trained = len(summary["epsilon_spent"])
    return {
        "sites": sites,
        "rounds": rounds,
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak / 2**20),
        "test_accuracy": summary["test_accuracy"],
        "sites_trained": trained,
        "max_epsilon": max((e for e in summary["epsilon_spent"].values() if e), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="100x3,1000x2", help="SITESxROUNDS,...")
    parser.add_argument("--sample-s", type=float, default=0.5)
    args = parser.parse_args()
    plan = [tuple(int(v) for v in item.split("x")) for item in args.runs.split(",")]
    runs = []
    with tempfile.TemporaryDirectory(prefix="fedlife-scale-") as folder:
        for sites, rounds in plan:
            runs.append(run_one(sites, rounds, Path(folder), args.sample_s))
            print(json.dumps(runs[-1]), file=sys.stderr)
    table = Table(title=f"fedlife-sim at scale ({os.cpu_count()} cores, DP epsilon 3)")
    for column in ("sites", "rounds", "wall s", "peak RSS MiB", "accuracy", "trained", "eps"):
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(
            str(r["sites"]),
            str(r["rounds"]),
            f"{r['wall_s']:.0f}",
            f"{r['peak_rss_mib']}" + (" (over 8 GiB)" if r["peak_rss_mib"] > LIMIT_MIB else ""),
            f"{r['test_accuracy']:.3f}",
            str(r["sites_trained"]),
            f"{r['max_epsilon']:.3f}" if r["max_epsilon"] else "-",
        )
    Console().print(table)
    keys = ("sites", "rounds", "wall_s", "peak_rss_mib")
    print(json.dumps({"runs": [{k: r[k] for k in keys} for r in runs]}))


if __name__ == "__main__":
    main()
