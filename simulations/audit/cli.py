"""``fedlife-sim audit``: an empirical privacy audit (membership inference on canaries)."""

from __future__ import annotations

import json
import math

import typer

from common.cli import one_line_errors
from simulations.audit.spec import AuditSpec


@one_line_errors
def audit_command(
    dataset: str = typer.Option("digits", help="Bundled dataset the sites hold."),
    sites: int = typer.Option(2, help="Virtual sites; member canaries are spread over them."),
    canaries: int = typer.Option(600, help="Mislabeled canaries, half trained on."),
    rounds: int = typer.Option(3, help="Federated rounds of each run."),
    local_epochs: int = typer.Option(20, help="Local epochs per round (long: overfit)."),
    epsilon: float = typer.Option(1.0, help="Per-site budget of the DP run."),
    seed: int = typer.Option(0, help="Seeds the split, the canaries and training."),
    out: str = typer.Option("", help="New folder for both runs (default: runs/audit-<time>)."),
    *,
    as_json: bool = typer.Option(False, "--json", help="Print only the figures as JSON."),
) -> None:
    """Train with and without DP, attack the final global model, compare epsilons."""
    spec = AuditSpec(
        dataset=dataset,
        sites=sites,
        canaries=canaries,
        rounds=rounds,
        local_epochs=local_epochs,
        epsilon=epsilon,
        seed=seed,
        out=out,
    )
    spec.out_dir()  # a bad option or folder is refused before the heavy imports
    # Imported here: the experiment pulls in torch, sklearn and the simulation runner,
    # 14 s of CPU that a refused option (or any other fedlife-sim command) would pay.
    from simulations.audit.experiment import audit, print_audit

    results = audit(spec)
    figures = {
        name: {
            k: (None if isinstance(v, float) and math.isinf(v) else v)
            for k, v in r.items()
            if k != "attack"
        }
        for name, r in results.items()
    }
    if as_json:
        print(json.dumps(figures))
        return
    print_audit(results)
    dp = results["dp"]
    if dp["empirical_epsilon_lower_bound"] > dp["accountant_epsilon"]:
        typer.echo("the attack proves more privacy loss than the accountant reports", err=True)
        raise typer.Exit(1)
