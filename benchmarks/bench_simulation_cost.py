"""What one small simulation costs in CPU, by process: the unit the test suite pays.

    .venv/bin/python benchmarks/bench_simulation_cost.py [--sites 3] [--rounds 2]

Runs ``fedlife-sim run --sites 3 --rounds 2`` (the size most end-to-end tests use)
with one Ray worker CPU, as the suite does (``FEDLIFE_SIM_CPUS=1``), in its own Flower
home and Ray temp dir, and samples the CPU time of every process it starts every
0.1 s (``psutil``; a process is counted at its last sample, so short-lived ones are
slightly undercounted). Processes are grouped by what they are: the ``fedlife-sim``
driver, the ClientApp actor (every site's rounds), Ray's idle/task workers (the sites'
``prepare`` jobs) and Ray's own services. Run it on an idle machine: the figures are
CPU seconds, which other load barely changes, and wall seconds, which it does. The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
RAY_SERVICES = (
    "gcs_server",
    "raylet",
    "dashboard",
    "DashboardAgent",
    "RuntimeEnvAgent",
    "runtime_env/agent",
    "log_monitor",
    "autoscaler",
    "monitor.py",
)


def kind(command: list[str]) -> str:
    line = " ".join(command)
    if "ClientAppActor" in line:
        return "ClientApp actor"
    if "-m simulations" in line:
        return "fedlife-sim driver"
    if any(name in line for name in RAY_SERVICES):
        return "Ray services"
    if "ray::" in line or "default_worker" in line or "setup_worker" in line:
        return "Ray task workers"
    return command[0].rsplit("/", 1)[-1] if command else "unknown"


def sample(command: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, list[float]]]:
    """Run ``command``; the wall time, its exit code and each process's last CPU time."""
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    root = psutil.Process(process.pid)
    last: dict[int, tuple[str, float]] = {}
    while process.poll() is None:
        try:
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            family = []
        for member in family:
            try:
                with member.oneshot():
                    times = member.cpu_times()
                    last[member.pid] = (kind(member.cmdline()), times.user + times.system)
            except psutil.Error:
                pass
        time.sleep(0.1)
    output = process.stdout.read().decode() if process.stdout else ""
    if process.returncode != 0:
        sys.exit(f"the simulation failed:\n{output[-3000:]}")
    by_kind: dict[str, list[float]] = defaultdict(list)
    for name, seconds in last.values():
        by_kind[name].append(seconds)
    return time.monotonic() - started, process.returncode, by_kind


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
    command = [sys.executable, "-m", "simulations", "run"]
    command += ["--sites", str(args.sites), "--rounds", str(args.rounds)]
    try:
        wall, _, by_kind = sample([*command, "--json", "--run-dir", f"{out}/run"], env)
    finally:
        for folder in (home, ray_tmp, out):
            shutil.rmtree(folder, ignore_errors=True)

    table = Table(
        title=f"fedlife-sim {' '.join(command[3:])}: CPU by process (load {os.getloadavg()[0]:.1f})"
    )
    for column in ("processes", "count", "CPU s"):
        table.add_column(column)
    for name, seconds in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        table.add_row(name, str(len(seconds)), f"{sum(seconds):.1f}")
    total = sum(sum(seconds) for seconds in by_kind.values())
    table.add_row("all", str(sum(len(s) for s in by_kind.values())), f"{total:.1f}")
    Console().print(table)
    print(f"wall {wall:.1f} s")
    figures = {
        "wall_s": round(wall, 2),
        "cpu_s": round(total, 2),
        "processes": sum(len(s) for s in by_kind.values()),
        **{
            f"{name.replace(' ', '_').replace('-', '_').lower()}_cpu_s": round(sum(seconds), 2)
            for name, seconds in by_kind.items()
        },
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
