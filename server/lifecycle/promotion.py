"""Promotion: the registry's aliases and the rule a challenger must pass.

The coordinator's state folder holds ``aliases.json``: ``production`` (the model
deployments serve and retraining starts from) and ``previous`` (what a rollback
restores), each ``{run_dir, run_id, round}``. Every change is an event
(:mod:`server.lifecycle.events`): in events.jsonl and the coordinator's audit log.

A challenger is promoted only if its federated metric beats the champion's by at
least ``margin`` and no site's metric is worse than the champion's there, nor any
fairness gap (per site or federated) wider, by more than ``tolerance`` (all measured
in one query, :mod:`server.lifecycle.challenge`).
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.atomic_files import write_atomically
from common.errors import PromotionError, RunDirError
from server.lifecycle.events import Events

ALIASES = "aliases.json"
# What evaluate_beside (server.lifecycle.challenge) writes into the challenger's run dir.
CHALLENGE = "challenge.json"
DEFAULT_MARGIN = 0.01
DEFAULT_TOLERANCE = 0.05
DEFAULT_METRIC = "accuracy"


@dataclass
class Decision:
    """Whether a challenger is promoted, and why.

    Parameters
    ----------
    promote : the challenger passed.
    reasons : one line per rule that failed (or the line saying it passed).
    champion, challenger : the federated metric of each.
    worse_sites : '<site> <metric>' or '<site or federated> <column> <fairness gap>' ->
        how much worse the challenger is there (beyond tolerance).
    """

    promote: bool
    reasons: list[str]
    champion: float | None = None
    challenger: float | None = None
    worse_sites: dict[str, float] = field(default_factory=dict)


def promotion_decision(
    challenge: dict[str, Any],
    *,
    margin: float = DEFAULT_MARGIN,
    tolerance: float = DEFAULT_TOLERANCE,
    metric: str = DEFAULT_METRIC,
) -> Decision:
    """Apply the promotion rule to a ``challenge.json`` record.

    Parameters
    ----------
    challenge : what ``challenge.evaluate_beside`` wrote.
    margin : how much better the challenger's federated ``metric`` must be.
    tolerance : how much worse ``metric`` may be at any one site, and how much wider
        any fairness gap (demographic parity, equalized odds, accuracy difference).
    metric : higher-is-better metric compared ('accuracy', 'f1', 'auc').
    """
    champion = challenge["federated"]["champion"].get(metric)
    challenger = challenge["federated"]["challenger"].get(metric)
    if champion is None or challenger is None or not challenge["sites"]:
        return Decision(promote=False, reasons=[f"no site evaluated both models on {metric}"])
    reasons = []
    if challenger < champion + margin:
        reasons.append(
            f"federated {metric} {challenger:.4f} is not {margin:g} above the champion's "
            f"{champion:.4f}"
        )
    worse = {}
    for site, both in challenge["sites"].items():
        old, new = both["champion"].get(metric), both["challenger"].get(metric)
        if old is not None and new is not None and old - new > tolerance:
            worse[f"{site} {metric}"] = old - new
    worse.update(_fairness_worse(challenge.get("fairness") or {}, tolerance))
    if worse:
        shown = ", ".join(f"{s} by {d:.4f}" for s, d in sorted(worse.items()))
        reasons.append(f"worse than tolerance {tolerance:g}: {shown}")
    if not reasons:
        reasons.append(
            f"federated {metric} {challenger:.4f} beats the champion's {champion:.4f} by "
            f">= {margin:g}, no site worse by more than {tolerance:g}"
        )
    return Decision(
        not worse and challenger >= champion + margin, reasons, champion, challenger, worse
    )


FAIRNESS_GAPS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "accuracy_difference",
)


def _fairness_worse(fairness: dict[str, Any], tolerance: float) -> dict[str, float]:
    """Each (site or 'federated', sensitive column, gap) that grows by more than ``tolerance``."""
    champion, challenger = fairness.get("champion") or {}, fairness.get("challenger") or {}
    pairs = [("federated", champion.get("federated") or {}, challenger.get("federated") or {})]
    for site, new in (challenger.get("per_site") or {}).items():
        pairs.append((site, (champion.get("per_site") or {}).get(site) or {}, new))
    worse = {}
    for where, old_columns, new_columns in pairs:
        for column, new in new_columns.items():
            old = old_columns.get(column) or {}
            for gap in FAIRNESS_GAPS:
                before, after = old.get(gap), new.get(gap)
                if before is not None and after is not None and after - before > tolerance:
                    worse[f"{where} {column} {gap}"] = after - before
    return worse


class Aliases:
    """The ``production`` and ``previous`` aliases of a coordinator's state folder.

    Parameters
    ----------
    state : the coordinator's state folder.
    """

    def __init__(self, state: str | Path) -> None:
        self.state = Path(state)
        self.path = self.state / ALIASES

    def read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirError(f"{self.path}: cannot read ({error})") from None

    def get(self, name: str) -> dict[str, Any] | None:
        return self.read().get(name)

    def promote(
        self, run_dir: str | Path, events: Events, *, decision: Decision | None = None
    ) -> dict[str, Any]:
        """Make ``run_dir`` production (the champion it beat becomes previous).

        ``run_dir`` must hold ``challenge.json``: a model never evaluated beside the
        champion is refused, and nothing changes. ``decision`` is recorded; without
        one (an operator's promote) the event says so.
        """
        challenge = evaluated(run_dir)
        with self._locked():
            aliases = self.read()
            current = aliases.get("production") or challenge["champion"]
            chosen = challenge["challenger"]
            if current.get("run_dir") == chosen["run_dir"]:
                return aliases  # already production: promoting again changes nothing
            aliases = {"production": chosen, "previous": current}
            self._write(aliases)
        events.emit(
            "promoted",
            production=chosen,
            previous=current,
            by="rule" if decision else "operator",
            reasons=decision.reasons if decision else [],
        )
        return aliases

    def rollback(self, events: Events, run_dir: str | Path | None = None) -> dict[str, Any]:
        """Restore ``previous`` as production (``run_dir``, if given, must be production)."""
        with self._locked():
            aliases = self.read()
            production, previous = aliases.get("production"), aliases.get("previous")
            if not production or not previous:
                raise PromotionError(f"{self.path}: no previous model to roll back to")
            if run_dir is not None and Path(run_dir).resolve() != Path(production["run_dir"]):
                raise PromotionError(
                    f"{run_dir} is not the production model ({production['run_dir']} is)"
                )
            aliases = {"production": previous, "previous": production}
            self._write(aliases)
        events.emit("rolled-back", production=previous, replaced=production)
        return aliases

    def _write(self, aliases: dict[str, Any]) -> None:
        write_atomically(self.path, json.dumps(aliases, indent=2) + "\n")

    def _locked(self):
        self.state.mkdir(parents=True, exist_ok=True)
        return _Lock(self.state / ".aliases.lock")


class _Lock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.handle = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def evaluated(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``challenge.json``; a :class:`PromotionError` when it has none."""
    path = Path(run_dir) / CHALLENGE
    if not (Path(run_dir) / "run.json").exists():
        raise RunDirError(f"{run_dir}: not a fedlife run directory (no run.json)")
    if not path.exists():
        raise PromotionError(
            f"{run_dir}: was never evaluated beside a champion (no {CHALLENGE}); "
            "only a retrained challenger can be promoted"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RunDirError(f"{path}: cannot read ({error})") from None
