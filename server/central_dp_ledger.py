"""The coordinator's central-DP ledger: one federation's site-level epsilon across runs.

``central-dp-ledger.jsonl`` lives beside the run directories (the parent of
``run_dir``). Each round of a central-DP run writes two JSON lines::

    {"federation": "nodes:11,12,13", "kind": "reserve", "run_id": "...", "round": 4,
     "noise_multiplier": 0.4, "epsilon": 31.2, "delta": 1e-05, "prev_hash": "...", "hash": "..."}
    {"federation": "nodes:11,12,13", "kind": "settle", "reserves": "<hash above>",
     "noise_multiplier": 1.0, "epsilon": 9.83, "delta": 1e-05, "prev_hash": "...", "hash": "..."}

Before the round, :meth:`CentralDPLedger.reserve` takes an exclusive ``fcntl`` lock and
composes (Opacus's RDP accountant) the federation's rounds with this one at the least
noise multiplier it can have (only ``min-train-sites`` answer: the noise is sized for
all sites asked, the mean is over those that answer); past the budget it records
nothing and returns why the run stops. After the round, :meth:`CentralDPLedger.settle`
replaces the reservation by the multiplier the round really had (``null``: nothing was
released). Projection and record happen under one lock, and a reservation counts until
settled, so concurrent runs of one federation cannot overspend, and a crashed run's
round counts at its worst: the ledger overstates, never understates. The lines are
hash-chained (``common.audit.entry_hash``) and only ever appended.

A federation is named by its allowed nodes (sorted), else by its sites folder, else
``"default"`` (docs/privacy/central-dp.md).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common.audit import GENESIS, entry_hash
from common.errors import LedgerError
from common.run_config import RunConfig
from server.central_dp import composed_epsilon

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

    def reserve(self, run_id: str, server_round: int, worst: float) -> tuple[str, str]:
        """Reserve ``server_round`` at its ``worst`` (least) noise multiplier, if it fits.

        Returns ``("", reservation)`` when the round may go ahead, its reservation
        recorded (settle it with :meth:`settle`); otherwise the reason the run stops
        and "", with nothing recorded. An unsettled reservation (a crashed run) counts
        at ``worst``.
        """
        budget = self.config.central_dp_epsilon_budget
        with self._locked() as entries:
            releases = [*self._releases(entries), (worst, 1)]
            projected = composed_epsilon(releases, self.config.central_dp_delta)
            if budget and projected > budget:
                self.epsilon = composed_epsilon(releases[:-1], self.config.central_dp_delta)
                return (
                    f"round {server_round}: central DP could take federation "
                    f"'{self.federation}' to epsilon {projected:.3g}, past "
                    f"central-dp-epsilon-budget={budget:g} (spent {self.epsilon:.3g})"
                ), ""
            entry = self._append(
                entries,
                kind="reserve",
                run_id=run_id,
                round=server_round,
                noise_multiplier=worst,
                epsilon=projected,
            )
        return "", entry["hash"]

    def settle(self, reservation: str, noise_multiplier: float | None) -> float:
        """Replace ``reservation`` by the noise multiplier its round really had.

        ``None``: the round released nothing (it stopped or aggregated nothing).
        Returns the federation's epsilon after it, also kept in :attr:`epsilon`.
        """
        with self._locked() as entries:
            if reservation not in {e["hash"] for e in entries if e["kind"] == "reserve"}:
                raise LedgerError(f"{self.path}: no reservation {reservation[:12]}")
            settled = {
                "federation": self.federation,
                "kind": "settle",
                "reserves": reservation,
                "noise_multiplier": noise_multiplier,
            }
            releases = self._releases([*entries, settled])
            self.epsilon = composed_epsilon(releases, self.config.central_dp_delta)
            self._append(
                entries,
                kind="settle",
                reserves=reservation,
                noise_multiplier=noise_multiplier,
                epsilon=self.epsilon,
            )
        return self.epsilon

    @contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        """The entries, read and appended to under an exclusive lock (one writer)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(LEDGER_NAME + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # projection and record as one step
                yield self.entries()
        except OSError as error:
            raise LedgerError(f"{self.path}: cannot write ({error.strerror})") from None

    def _append(self, entries: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        entry = {
            "federation": self.federation,
            **fields,
            "delta": self.config.central_dp_delta,
            "prev_hash": entries[-1]["hash"] if entries else GENESIS,
        }
        entry["hash"] = entry_hash(entry)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        entries.append(entry)
        return entry

    def _releases(self, entries: list[dict[str, Any]]) -> list[tuple[float, int]]:
        """(noise multiplier, rounds) of the federation: settled rounds at their real
        multiplier, unsettled reservations at their worst, unreleased rounds not at all."""
        ours = [e for e in entries if e["federation"] == self.federation]
        noise = {e["hash"]: e["noise_multiplier"] for e in ours if e["kind"] == "reserve"}
        # A settle replaces its reservation's worst case by the real multiplier.
        for entry in ours:
            if entry["kind"] == "settle":
                noise[entry["reserves"]] = entry["noise_multiplier"]
        return list(Counter(float(s) for s in noise.values() if s is not None).items())
