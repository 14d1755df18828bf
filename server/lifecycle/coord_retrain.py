"""``fedlife-coord retrain --state STATE --from RUN_DIR --when EXPR``: on a deployment.

1. An observe-only run (:mod:`server.lifecycle.observe_run`) asks the connected sites
   for their clean versions, histograms on the champion's bins and epsilon spent.
2. :func:`server.lifecycle.retrain.decide` evaluates ``--when`` (an event either way).
3. If it fires: a run with the champion's config, warm-started from it
   (``parent-run``), evaluates both models at every site after its last round; the
   promotion rule then decides (:func:`server.lifecycle.retrain.judge`).

The champion is the state's ``production`` alias, else ``--from``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli import one_line_errors
from common.run_config import RunConfig
from server.deploy import coordinator
from server.deploy.launch import launch, launch_config
from server.lifecycle.events import Events
from server.lifecycle.promotion import DEFAULT_MARGIN, DEFAULT_METRIC, DEFAULT_TOLERANCE
from server.lifecycle.trigger import QUANTITIES, parse_condition
from server.run_dir import RunDirectory, default_run_dir

# Keys of the champion's config a challenger does not inherit.
NOT_INHERITED = ("run-dir", "resume", "allowed-nodes", "parent-run", "parent-round", "observe-only")


@one_line_errors
def retrain_command(
    state: Path = typer.Option(..., "--state", help="The coordinator's state folder."),
    from_run: Path = typer.Option(
        ..., "--from", help="The deployed model's run (until a challenger is promoted)."
    ),
    when: str = typer.Option(..., "--when", help="Condition over " + ", ".join(QUANTITIES) + "."),
    rounds: int = typer.Option(0, help="Rounds of the challenger (0 = the champion's)."),
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the decision; launch no run."),
    notify: str = typer.Option("", help="Webhook URL every event is POSTed to as JSON."),
    margin: float = typer.Option(DEFAULT_MARGIN, help="How much better the challenger must be."),
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE, help="How much worse it may be at any one site."
    ),
    metric: str = typer.Option(DEFAULT_METRIC, help="accuracy, f1 or auc."),
) -> None:
    """Retrain when EXPR holds: warm start from the champion, promote only a better one."""
    condition = parse_condition(when)  # a bad expression: nothing asked, nothing written
    # Flower's message types come with these: not needed for --help or a bad option.
    from server.lifecycle.observe_run import read_answers
    from server.lifecycle.retrain import champion_of, decide, judge, record_attempt

    champion = champion_of(state, from_run)
    events = Events(state, notify)
    started = coordinator.CoordinatorState.load(state)
    recorded = RunDirectory(champion).read_json("run.json").get("config") or {}
    threshold = RunConfig.from_flower(recorded, source=str(champion)).drift_threshold
    query = launch_config(
        started,
        default_run_dir(Path(state) / "observations"),
        overrides={"observe-only": True, "parent-run": str(champion.resolve())},
    )
    launch(started, query)
    answers = read_answers(query["run-dir"])
    decision = decide(
        condition, champion, answers, events, drift_threshold=threshold, dry_run=dry_run
    )
    verb = "fires" if decision.fire else "does not fire"
    print(f"retrain {verb}{' (dry run)' if dry_run else ''}: {decision.reason}")
    if dry_run or not decision.fire:
        return
    inherited = {k: v for k, v in recorded.items() if k not in NOT_INHERITED}
    overrides = {**inherited, "parent-run": str(champion.resolve())}
    if rounds:
        overrides["num-server-rounds"] = rounds
    config = launch_config(started, overrides=overrides)
    events.emit("retrain-started", run_dir=config["run-dir"], parent=str(champion))
    launch(started, config)
    if (Path(config["run-dir"]) / "summary.json").exists():  # a crashed run may be tried again
        record_attempt(state, decision, config["run-dir"])
    verdict = judge(config["run-dir"], events, margin=margin, tolerance=tolerance, metric=metric)
    outcome = "promoted to production" if verdict.promote else "not promoted"
    print(f"challenger {config['run-dir']}: {outcome}: {'; '.join(verdict.reasons)}")
