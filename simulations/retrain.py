"""``fedlife-sim retrain``: the retraining loop over a simulation's virtual sites.

The virtual sites answer the retrain query as a deployed site does (their own
``site_statistics`` on the champion's bins, their ledger's epsilon left: aggregates
only); :mod:`server.lifecycle.retrain` decides; a fired decision runs the same sites
again (``SimulationSpec.sites_dir``) warm-started from the champion
(``parent-run``), and the challenger is judged against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from client.federation.statistics import site_statistics
from client.site import Site
from common.config import load_site_config
from common.errors import ConfigError, FedlifeError, RunDirError
from common.features import FeatureSpec
from common.run_config import RunConfig
from server.lifecycle.events import Events
from server.lifecycle.observation import SiteAnswer
from server.lifecycle.promotion import DEFAULT_MARGIN, DEFAULT_METRIC, DEFAULT_TOLERANCE
from server.lifecycle.retrain import champion_of, decide, judge, record_attempt
from server.lifecycle.trigger import parse_condition
from server.run_dir import RunDirectory, default_run_dir
from simulations.runner import PlannedRun, plan, plan_resume, run
from simulations.spec import SimulationSpec


@dataclass(frozen=True)
class RetrainSpec:
    """One ``fedlife-sim retrain`` call.

    Parameters
    ----------
    root : the simulation run whose ``sites/`` the federation is.
    when : the ``--when`` condition (``server.lifecycle.trigger``).
    rounds : rounds of the challenger run (0 = the root run's).
    dry_run : decide and record the decision, launch nothing.
    state : the coordinator's state folder ('' = the folder holding ``root``).
    notify : webhook URL every event is POSTed to ('' = none).
    run_dir : the challenger's run directory ('' = ``<state>/<timestamp>``).
    margin, tolerance, metric : the promotion rule (``server.lifecycle.promotion``).
    run_options : further run-config keys of the challenger (RunConfig field names).
    poisoned_sites, poison_factor : sites whose updates are multiplied by the factor
        (``simulations.attacks.ScaleUpdates``): a worse challenger on purpose.
    """

    root: str
    when: str
    rounds: int = 0
    dry_run: bool = False
    state: str = ""
    notify: str = ""
    run_dir: str = ""
    margin: float = DEFAULT_MARGIN
    tolerance: float = DEFAULT_TOLERANCE
    metric: str = DEFAULT_METRIC
    run_options: tuple[tuple[str, Any], ...] = ()
    poisoned_sites: tuple[str, ...] = ()
    poison_factor: float = -1.0


def retrain(spec: RetrainSpec, on_round=None) -> dict[str, Any]:
    """Decide, and if the condition fires, train and judge a challenger; return a summary."""
    condition = parse_condition(spec.when)  # a bad expression: nothing read or written
    if spec.rounds < 0:
        raise ConfigError(f"--rounds must be >= 0, got {spec.rounds}")
    root = Path(spec.root)
    if not (root / "run.json").exists():
        raise RunDirError(f"{root}: parent run does not exist (no run.json)")
    sites_dir = root / "sites"
    tomls = sorted(sites_dir.glob("*/site.toml"))
    if not tomls:
        raise RunDirError(f"{root}: not a fedlife-sim run with virtual sites (no sites/)")
    state = Path(spec.state or root.resolve().parent)
    events = Events(state, spec.notify)
    champion = champion_of(state, root)
    info = RunDirectory(champion).read_json("run.json")
    feature_spec = FeatureSpec.from_json(info["feature_spec"])
    threshold = RunConfig.from_flower(info["config"], source=str(champion)).drift_threshold
    answers = [site_answer(path, feature_spec) for path in tomls]
    decision = decide(
        condition, champion, answers, events, drift_threshold=threshold, dry_run=spec.dry_run
    )
    summary: dict[str, Any] = {"decision": decision.to_json(), "launched": None}
    if spec.dry_run or not decision.fire:
        return summary
    planned = challenger_run(spec, root, champion, state)
    events.emit(
        "retrain-started", run_dir=str(planned.run_dir.path.resolve()), parent=str(champion)
    )
    result = run(planned, on_round)
    record_attempt(state, decision, planned.run_dir.path)  # a crashed run may be tried again
    verdict = judge(
        planned.run_dir.path,
        events,
        margin=spec.margin,
        tolerance=spec.tolerance,
        metric=spec.metric,
    )
    summary["launched"] = {
        "run_dir": str(planned.run_dir.path.resolve()),
        "test_accuracy": result.get("test_accuracy"),
        "promoted": verdict.promote,
        "reasons": verdict.reasons,
    }
    return summary


def site_answer(site_toml: Path, spec: FeatureSpec) -> SiteAnswer:
    """What one virtual site answers: version, histograms on ``spec``'s bins, epsilon left."""
    site = Site(load_site_config(site_toml))
    try:
        statistics = site_statistics(site, spec)
    except FedlifeError as error:
        raise RunDirError(f"{site.name}: cannot answer the retrain query ({error})") from None
    privacy = site.config.privacy
    left = None
    if privacy.enabled:
        spent = site.ledger.epsilon(privacy.delta)
        left = max(0.0, privacy.epsilon_budget - spent) if math.isfinite(spent) else 0.0
    return SiteAnswer(site.name, statistics["version"], statistics["histograms"], left)


def challenger_run(spec: RetrainSpec, root: Path, champion: Path, state: Path) -> PlannedRun:
    """The planned challenger: the root's simulation on its existing sites, warm-started."""
    recorded = plan_resume_spec(root)
    options = {
        **recorded.run_options,
        **dict(spec.run_options),
        "parent_run": str(champion.resolve()),
    }
    simulation = replace(
        recorded,
        sites_dir=str((root / "sites").resolve()),
        rounds=spec.rounds or recorded.rounds,
        run_dir=spec.run_dir or str(default_run_dir(state)),
        run_options=options,
        poisoned_sites=spec.poisoned_sites,
        poison_factor=spec.poison_factor,
    )
    return plan(simulation)


def plan_resume_spec(root: Path) -> SimulationSpec:
    """The SimulationSpec the root run recorded (its sites, dataset and seed)."""
    try:
        return plan_resume(root).spec
    except FedlifeError as error:
        raise RunDirError(f"{root}: cannot read its simulation ({error})") from None
