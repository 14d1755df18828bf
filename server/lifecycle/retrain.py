"""``retrain``: decide from the sites' answers, then judge the challenger it trained.

Shared by ``fedlife-sim retrain`` (virtual sites) and the coordinator: both gather
:class:`~server.lifecycle.observation.SiteAnswer` s their own way, then
:func:`decide` says whether to launch a warm-started run and :func:`judge` applies
the promotion rule to it. Every decision is an event.

Idempotent: ``<state>/retrain.json`` remembers the champion and the site versions the
last challenger that finished trained on; the same champion and versions never
launch a second run, so a timer may call ``retrain`` as often as it likes (the
crontab lines ``schedule print`` writes hold a lock, so two calls never overlap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic_files import write_atomically
from common.errors import RunDirError
from server.lifecycle.events import Events
from server.lifecycle.observation import Observation, SiteAnswer, observe
from server.lifecycle.promotion import Aliases, Decision, promotion_decision
from server.lifecycle.trigger import Condition
from server.run_dir import RunDirectory

LAST_ATTEMPT = "retrain.json"


@dataclass
class RetrainDecision:
    """Whether ``retrain`` launches a run, and why.

    Parameters
    ----------
    fire : launch a warm-started run.
    reason : one line: the condition and the values it read, or why not.
    champion : run directory of the model the run would start from.
    observation : what the sites answered, compared with the champion's data.
    """

    fire: bool
    reason: str
    champion: str
    observation: Observation

    def to_json(self) -> dict[str, Any]:
        return {
            "fire": self.fire,
            "reason": self.reason,
            "champion": self.champion,
            "values": self.observation.values,
            "sites": self.observation.sites,
        }


def champion_of(state: str | Path, default: str | Path) -> Path:
    """The production model's run directory, or ``default`` before any promotion."""
    if not (Path(default) / "run.json").exists():
        raise RunDirError(f"{default}: parent run does not exist (no run.json)")
    production = Aliases(state).get("production")
    path = Path(production["run_dir"]) if production else Path(default)
    if not (path / "run.json").exists():
        raise RunDirError(f"{path}: parent run does not exist (no run.json)")
    return path


def decide(
    condition: Condition,
    champion: str | Path,
    answers: list[SiteAnswer],
    events: Events,
    *,
    drift_threshold: float,
    dry_run: bool = False,
) -> RetrainDecision:
    """Evaluate ``condition`` on the sites' answers; record the decision as events."""
    observation = observe(champion, answers)
    for row in observation.drifted(drift_threshold):
        events.emit(
            "drift",
            site=row["site"],
            psi=row["drift"],
            column=row["drift_column"],
            threshold=drift_threshold,
        )
    values = observation.values
    shown = ", ".join(f"{k}={_number(values[k])}" for k in sorted(condition.names()))
    fire = condition.evaluate(values)
    reason = f"'{condition.text}' is {'true' if fire else 'false'} ({shown})"
    last = _last_attempt(events.state)
    versions = observation.versions()
    if (
        fire
        and last.get("champion") == str(Path(champion).resolve())
        and (last.get("versions") == versions)
    ):
        fire = False
        reason += f"; challenger {last.get('run_dir')} already trained on these versions"
    decision = RetrainDecision(fire, reason, str(Path(champion).resolve()), observation)
    events.emit(
        "retrain-fired" if fire else "retrain-not-fired",
        dry_run=dry_run,
        **decision.to_json(),
    )
    return decision


def record_attempt(state: str | Path, decision: RetrainDecision, run_dir: str | Path) -> None:
    """Remember the champion and versions a challenger trained on (idempotence)."""
    path = Path(state) / LAST_ATTEMPT
    record = {
        "champion": decision.champion,
        "versions": decision.observation.versions(),
        "run_dir": str(Path(run_dir).resolve()),
    }
    write_atomically(path, json.dumps(record, indent=2) + "\n")


def judge(
    run_dir: str | Path,
    events: Events,
    *,
    margin: float,
    tolerance: float,
    metric: str,
) -> Decision:
    """Apply the promotion rule to the challenger in ``run_dir``; promote if it passes."""
    run = RunDirectory(run_dir)
    if not (run.path / "challenge.json").exists():
        decision = Decision(
            promote=False, reasons=["the challenger stopped before it was evaluated"]
        )
        events.emit("not-promoted", run_dir=str(run.path.resolve()), reasons=decision.reasons)
        return decision
    challenge = run.read_json("challenge.json")
    decision = promotion_decision(challenge, margin=margin, tolerance=tolerance, metric=metric)
    events.emit(
        "challenger-evaluated",
        run_dir=str(run.path.resolve()),
        champion=challenge["champion"],
        federated=challenge["federated"],
        sites=challenge["sites"],
        promote=decision.promote,
        reasons=decision.reasons,
    )
    if decision.promote:
        Aliases(events.state).promote(run.path.resolve(), events, decision=decision)
    else:
        events.emit("not-promoted", run_dir=str(run.path.resolve()), reasons=decision.reasons)
    return decision


def _last_attempt(state: Path) -> dict[str, Any]:
    path = state / LAST_ATTEMPT
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable memory only risks one more run, never a wrong promotion


def _number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
