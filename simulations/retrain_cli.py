"""``fedlife-sim retrain RUN_DIR --when EXPR``: the retraining loop on virtual sites."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from common.cli import one_line_errors
from server.lifecycle.promotion import DEFAULT_MARGIN, DEFAULT_METRIC, DEFAULT_TOLERANCE
from server.lifecycle.trigger import QUANTITIES

WHEN_HELP = (
    "Condition over " + ", ".join(QUANTITIES) + ", e.g. 'new_versions >= 2 or drift > 0.25'."
)


@one_line_errors
def retrain_command(
    run_dir: Path = typer.Argument(..., help="The fedlife-sim run whose sites/ the federation is."),
    when: str = typer.Option(..., "--when", help=WHEN_HELP),
    rounds: int = typer.Option(0, help="Rounds of the challenger (0 = the run's own)."),
    *,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the decision; launch nothing."),
    state: str = typer.Option(
        "", help="Coordinator state: aliases, events.jsonl, audit/ ('' = RUN_DIR's folder)."
    ),
    notify: str = typer.Option("", help="Webhook URL every event is POSTed to as JSON."),
    out: str = typer.Option("", "--run-dir", help="The challenger's run directory."),
    margin: float = typer.Option(DEFAULT_MARGIN, help="How much better the challenger must be."),
    tolerance: float = typer.Option(
        DEFAULT_TOLERANCE, help="How much worse it may be at any one site."
    ),
    metric: str = typer.Option(DEFAULT_METRIC, help="accuracy, f1 or auc."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Retrain when EXPR holds: warm start from the champion, promote only a better one."""
    from simulations.retrain import RetrainSpec, retrain  # Ray, Flower, torch: past the options

    summary = retrain(
        RetrainSpec(
            root=str(run_dir),
            when=when,
            rounds=rounds,
            dry_run=dry_run,
            state=state,
            notify=notify,
            run_dir=out,
            margin=margin,
            tolerance=tolerance,
            metric=metric,
        )
    )
    if as_json:
        print(json.dumps(summary))
        return
    decision = summary["decision"]
    verb = "fires" if decision["fire"] else "does not fire"
    print(f"retrain {verb}{' (dry run)' if dry_run else ''}: {decision['reason']}")
    for site in decision["sites"]:
        drift = "-" if site["drift"] is None else f"{site['drift']:.3f} ({site['drift_column']})"
        print(
            f"  {site['site']}: version {site['version']} (trained on "
            f"{site['trained_version']}), drift {drift}"
        )
    launched = summary["launched"]
    if launched:
        outcome = "promoted to production" if launched["promoted"] else "not promoted"
        print(f"challenger {launched['run_dir']}: {outcome}: {'; '.join(launched['reasons'])}")
