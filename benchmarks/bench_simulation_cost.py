"""What one small simulation costs in CPU, by process: the unit the test suite pays.

    .venv/bin/python benchmarks/bench_simulation_cost.py [--sites 3] [--rounds 2]

Runs this tree's ``fedlife-sim run --sites 3 --rounds 2`` (the size most end-to-end
tests use) with one Ray worker CPU, as the suite does (``FEDLIFE_SIM_CPUS=1``), in its
own Flower home and Ray temp dir, and samples every process's CPU time
(``benchmarks.cpu_by_process``). Processes are grouped by what they are: the driver,
the ClientApp actor (every site's rounds), Ray's task workers (the sites' ``prepare``
jobs) and Ray's own services. Run it on an idle machine: the figures are CPU seconds,
which other load barely changes, and wall seconds, which it does. The last line
printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.cpu_by_process import RAY_SERVICES, print_groups, sample  # noqa: E402


def kind(command: Sequence[str]) -> str:
    line = " ".join(command)
    if "ClientAppActor" in line:
        return "ClientApp actor"
    if "-m simulations" in line:
        return "fedlife-sim driver"
    if any(name in line for name in RAY_SERVICES):
        return "Ray services"
    if "ray::" in line or "default_worker" in line or "setup_worker" in line:
        return "Ray task workers"
    return os.path.basename(command[0]) if command else "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    home, ray_tmp = tempfile.mkdtemp(prefix="flwr-"), tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    out = tempfile.mkdtemp(prefix="bench-sim-")
    env = {
        **os.environ,
        "FLWR_HOME": home,
        "RAY_TMPDIR": ray_tmp,
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "FEDLIFE_SIM_CPUS": "1",
    }
    # This tree's fedlife-sim, whichever copy the venv has installed.
    options = ["--sites", str(args.sites), "--rounds", str(args.rounds)]
    command = [sys.executable, "-m", "simulations", "run", *options]
    log = Path(out, "stderr.txt")
    try:
        with log.open("w") as stderr:
            wall, code, groups = sample(
                [*command, "--json", "--run-dir", f"{out}/run"],
                kind=kind,
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        if code != 0:
            sys.exit(f"the simulation exited {code}:\n{log.read_text()[-3000:]}")
    finally:
        for folder in (home, ray_tmp, out):
            shutil.rmtree(folder, ignore_errors=True)
    print_groups(f"fedlife-sim run {' '.join(options)}: CPU by process", wall, groups)


if __name__ == "__main__":
    main()
