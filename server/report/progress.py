"""A run's progress as it goes: one line per round, and the rounds a run directory gains.

``fedlife-sim run`` hears each round from the ServerApp in its own process;
``fedlife-coord run`` launches the ServerApp through ``flwr run`` and watches the run
directory's ``metrics.jsonl`` instead (:class:`RoundWatcher`). Both describe a round
with :func:`round_line`, so both bars say the same.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Beyond this many sites the line gives the range of their epsilons, not each one.
SITES_NAMED = 4


def round_line(record: dict[str, Any]) -> str:
    """``round 3: accuracy 0.812, epsilon a 0.41 b 0.39, 1 excluded (c: reason)``.

    Parameters
    ----------
    record : one round as ``metrics.jsonl`` holds it (or a ``RoundReport``'s fields).
    """
    metrics = record.get("central") or record.get("federated") or {}
    accuracy = metrics.get("accuracy")
    parts = [
        f"round {record['round']}: accuracy "
        + ("n/a" if accuracy is None or not math.isfinite(accuracy) else f"{accuracy:.3f}")
    ]
    epsilons = {p["site"]: p.get("epsilon") for p in record.get("participants", [])}
    parts.append(_epsilons(epsilons) if epsilons else "no site trained")
    excluded = record.get("excluded", [])
    if excluded:
        named = "; ".join(f"{e['site']}: {e['reason']}" for e in excluded[:2])
        more = f"; +{len(excluded) - 2} more" if len(excluded) > 2 else ""
        parts.append(f"{len(excluded)} excluded ({named}{more})")
    if record.get("stopped"):
        parts.append(f"stopped: {record['stopped']}")
    return ", ".join(parts)


def _epsilons(epsilons: dict[str, float | None]) -> str:
    if all(value is None for value in epsilons.values()):
        return f"{len(epsilons)} sites, no DP"
    if len(epsilons) <= SITES_NAMED:
        shown = " ".join(f"{site} {_epsilon(value)}" for site, value in sorted(epsilons.items()))
        return f"epsilon {shown}"
    spent = [value for value in epsilons.values() if value is not None]
    return f"{len(epsilons)} sites, epsilon {min(spent):.2f}..{max(spent):.2f}"


def _epsilon(value: float | None) -> str:
    return "no DP" if value is None else f"{value:.2f}"


class RoundWatcher:
    """The rounds a run directory's ``metrics.jsonl`` gains, as another process writes them.

    Parameters
    ----------
    run_dir : the run directory (it may not exist yet).
    skip_existing : count rounds already recorded (a resumed run's) as seen.
    """

    def __init__(self, run_dir: str | Path, *, skip_existing: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.offset = 0
        if skip_existing:
            self.new_rounds()

    def new_rounds(self) -> list[dict[str, Any]]:
        """The rounds written since the last call; a line still being written waits."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                text = handle.read()
        except FileNotFoundError:
            return []
        complete = text[: text.rfind(b"\n") + 1]
        self.offset += len(complete)
        records = []
        for line in complete.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a crash is no round (as RunDirectory.rounds says)
        return records


def watch_process(
    process: subprocess.Popen,
    watcher: RoundWatcher,
    on_round: Callable[[dict[str, Any]], None],
    *,
    every_s: float = 0.5,
    deadline: float | None = None,
) -> int:
    """Call ``on_round`` with each round ``watcher`` sees until ``process`` ends; its code.

    Parameters
    ----------
    process : the process running the ServerApp (``flwr run``).
    watcher : the run directory's rounds.
    on_round : called with each new round's record, in order.
    every_s : seconds between looks at the run directory.
    deadline : ``time.monotonic()`` after which to stop waiting (TimeoutExpired).
    """
    while True:
        code = process.poll()
        for record in watcher.new_rounds():  # after poll: the last rounds are not missed
            on_round(record)
        if code is not None:
            return code
        if deadline is not None and time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(process.args, deadline)
        time.sleep(every_s)
