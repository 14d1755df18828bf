"""The coordinator's central-DP ledger: one federation's site-level epsilon across runs.

Each round a central-DP run releases (one noisy aggregate) is one JSON line of
``central-dp-ledger.jsonl``, beside the run directories (the parent of ``run_dir``)::

    {"federation": "nodes:11,12,13", "run_id": "...", "round": 4,
     "noise_multiplier": 1.0, "sample_rate": 1.0, "delta": 1e-05,
     "epsilon": 7.41, "prev_hash": "...", "hash": "..."}

``epsilon`` is the federation's site-level epsilon once that round is released: every
earlier entry of the same federation composed with it by Opacus's RDP accountant. The
lines are hash-chained (``common.audit.entry_hash``) and only ever appended. Before a
round, :meth:`CentralDPLedger.charge` takes an exclusive ``fcntl`` lock, composes, and
either records the round or, when the result would pass the budget, records nothing and
returns why the run stops. Projection and record under one lock: two runs of the same
federation cannot both pass the check and together overspend.

A federation is named by its allowed nodes (sorted), else by its sites folder, else
``"default"`` (docs/privacy/central-dp.md). A round is charged when it is asked for, so
a round that then fails still counts: the ledger overstates, never understates.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from common.audit import GENESIS, entry_hash
from common.config import RunConfig
from common.errors import LedgerError
from server.central_dp import SAMPLE_RATE, composed_epsilon

LEDGER_NAME = "central-dp-ledger.jsonl"


def federation_id(config: RunConfig) -> str:
    """The name under which ``config``'s runs share one central-DP ledger account."""
    if config.allowed_nodes:
        return "nodes:" + ",".join(sorted(config.allowed_nodes.split(","), key=int))
    if config.sites_dir:
        return "sites:" + str(Path(config.sites_dir).resolve())
    return "default"


class CentralDPLedger:
    """The ledger file in ``directory``, charged for ``config``'s federation.

    Parameters
    ----------
    directory : folder beside the run directories (created on the first charge).
    config : the run config: federation, noise multiplier, delta and budget.
    """

    def __init__(self, directory: str | Path, config: RunConfig) -> None:
        self.path = Path(directory) / LEDGER_NAME
        self.config = config
        self.federation = federation_id(config)
        self.epsilon = 0.0

    def spent(self) -> float:
        """The federation's site-level epsilon so far (0 when it has no entry)."""
        return composed_epsilon(self._releases(self.entries()), self.config.central_dp_delta)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry of the ledger, all federations, after checking the hash chain."""
        if not self.path.exists():
            return []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise LedgerError(f"{self.path}: cannot read ({error.strerror})") from None
        entries, previous = [], GENESIS
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise LedgerError(f"{self.path}:{number}: not a JSON line") from None
            if entry.get("prev_hash") != previous or entry.get("hash") != entry_hash(entry):
                raise LedgerError(f"{self.path}:{number}: hash chain broken (edited?)")
            entries.append(entry)
            previous = entry["hash"]
        return entries

    def charge(self, run_id: str, server_round: int) -> str:
        """Record ``server_round`` of ``run_id``, or return why it would pass the budget.

        Returns "" when the round may go ahead (and is recorded); otherwise the
        reason the run stops, with nothing recorded.
        """
        sigma, delta = self.config.central_dp_noise_multiplier, self.config.central_dp_delta
        budget = self.config.central_dp_epsilon_budget
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(LEDGER_NAME + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # projection and record as one step
                entries = self.entries()
                releases = [*self._releases(entries), (sigma, 1)]
                projected = composed_epsilon(releases, delta)
                if budget and projected > budget:
                    self.epsilon = composed_epsilon(releases[:-1], delta)
                    return (
                        f"round {server_round}: central DP would take federation "
                        f"'{self.federation}' to epsilon {projected:.3g}, past "
                        f"central-dp-epsilon-budget={budget:g} (spent {self.epsilon:.3g})"
                    )
                entry = {
                    "federation": self.federation,
                    "run_id": run_id,
                    "round": server_round,
                    "noise_multiplier": sigma,
                    "sample_rate": SAMPLE_RATE,
                    "delta": delta,
                    "epsilon": projected,
                    "prev_hash": entries[-1]["hash"] if entries else GENESIS,
                }
                entry["hash"] = entry_hash(entry)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
        except OSError as error:
            raise LedgerError(f"{self.path}: cannot write ({error.strerror})") from None
        self.epsilon = projected
        return ""

    def _releases(self, entries: list[dict[str, Any]]) -> list[tuple[float, int]]:
        rounds = Counter(
            float(e["noise_multiplier"]) for e in entries if e["federation"] == self.federation
        )
        return list(rounds.items())
