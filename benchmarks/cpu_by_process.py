"""CPU seconds of every process a command starts, grouped by what each process is.

    .venv/bin/python benchmarks/cpu_by_process.py -- pytest -m deploy tests/e2e/test_deploy.py

Samples, every 0.2 s until the command ends, the CPU time (user + system) of every
process on the machine started after the command was (so also the detached ones: a
SuperLink, Ray's services), and keeps each process's last sample; processes that live
less than a sample are missed and the others slightly undercounted. Run it on an idle
machine: anything else started meanwhile is counted too. Groups are named by the first
of ``KINDS`` found in a process's command line, else by its program. The last line
printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import psutil
from rich.console import Console
from rich.table import Table

RAY_SERVICES = (
    "gcs_server",
    "raylet",
    "dashboard",
    "DashboardAgent",
    "RuntimeEnvAgent",
    "log_monitor",
    "autoscaler",
)
KINDS = (
    "flwr-clientapp",
    "flwr-serverapp",
    "flower-superexec",
    "flower-superlink",
    "supernode_process",
    "flower-supernode",
    "flwr supernode",
    "flwr run",
    "fedlife-site",
    "fedlife-coord",
    "fedlife-sim",
    "ClientAppActor",
    "pytest",
    *RAY_SERVICES,
    "ray::",
)


def by_command_line(command: Sequence[str]) -> str:
    line = " ".join(command)
    found = next((kind for kind in KINDS if kind in line), "")
    return found or (os.path.basename(command[0]) if command else "unknown")


def sample(
    command: Sequence[str],
    *,
    kind: Callable[[Sequence[str]], str] = by_command_line,
    **popen: object,
) -> tuple[float, int, dict[str, list[float]]]:
    """Run ``command`` (``popen``: Popen's keyword arguments); the wall seconds, its
    exit code, and each group's processes' CPU seconds."""
    started_at = time.time() - 1  # create times are rounded
    started = time.monotonic()
    process = subprocess.Popen(list(command), **popen)  # type: ignore[call-overload]
    last: dict[int, tuple[str, float]] = {}
    while process.poll() is None:
        for member in psutil.process_iter(["create_time"]):
            try:
                if member.info["create_time"] < started_at:
                    continue
                with member.oneshot():
                    times = member.cpu_times()
                    last[member.pid] = (kind(member.cmdline()), times.user + times.system)
            except psutil.Error:
                pass
        time.sleep(0.2)
    groups: dict[str, list[float]] = defaultdict(list)
    for name, seconds in last.values():
        groups[name].append(seconds)
    return time.monotonic() - started, process.returncode, dict(groups)


def print_groups(title: str, wall: float, groups: dict[str, list[float]]) -> dict[str, float]:
    """A table of the groups, then the JSON line of the figures; the figures."""
    table = Table(title=f"{title} (load {os.getloadavg()[0]:.1f})")
    for column in ("processes", "count", "CPU s"):
        table.add_column(column)
    for name, seconds in sorted(groups.items(), key=lambda item: -sum(item[1])):
        table.add_row(name, str(len(seconds)), f"{sum(seconds):.1f}")
    total = sum(sum(seconds) for seconds in groups.values())
    count = sum(len(seconds) for seconds in groups.values())
    table.add_row("all", str(count), f"{total:.1f}")
    Console().print(table)
    print(f"wall {wall:.1f} s")
    figures = {"wall_s": round(wall, 2), "cpu_s": round(total, 2), "processes": count}
    for name, seconds in groups.items():
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
        figures[f"{slug}_cpu_s"] = round(sum(seconds), 2)
    print(json.dumps(figures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    command = parser.parse_args().command
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        parser.error("give the command to run after --")
    wall, code, groups = sample(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print_groups(" ".join(command)[:80], wall, groups)
    if code != 0:
        sys.exit(f"the command exited {code}")


if __name__ == "__main__":
    main()
