"""The run's summary: the figures scripts read, and the plots people look at."""

from __future__ import annotations

import math
from typing import Any

from server.federation import FederationResult, RoundReport
from server.run_dir import RunDirectory


def epsilon_by_site(rounds: list[RoundReport]) -> dict[str, float | None]:
    """Each site's epsilon after the last round it trained in (None: no DP)."""
    spent: dict[str, float | None] = {}
    for report in rounds:
        for p in report.participants:
            spent[p["site"]] = p["epsilon"] if math.isfinite(p["epsilon"]) else None
    return dict(sorted(spent.items()))


def summarize(result: FederationResult, run_dir: RunDirectory, wall_s: float) -> dict[str, Any]:
    last = result.rounds[-1] if result.rounds else None
    final = (last.central or last.federated) if last else {}
    summary = {
        "run_id": result.run_id,
        "run_dir": str(run_dir.path),
        "rounds": len(result.rounds),
        "test_accuracy": final.get("accuracy"),
        "test_loss": final.get("loss"),
        "test_auc": final.get("auc"),
        "test_f1": final.get("f1"),
        "evaluated_on": "central test split" if last and last.central else "sites' local data",
        "federated_accuracy": last.federated.get("accuracy") if last else None,
        "epsilon_spent": epsilon_by_site(result.rounds),
        "epsilon_budget": _budgets(result.rounds),
        "excluded": [e for r in result.rounds for e in r.excluded],
        "stopped_reason": result.stopped_reason,
        "wall_s": round(wall_s, 3),
    }
    run_dir.write_json("summary.json", summary)
    return summary


def _budgets(rounds: list[RoundReport]) -> dict[str, float | None]:
    budgets = {}
    for report in rounds:
        for p in report.participants:
            budgets[p["site"]] = p["epsilon_budget"] if p["epsilon_budget"] > 0 else None
    return dict(sorted(budgets.items()))
