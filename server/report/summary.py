"""The run's summary: the figures scripts read, from every round the run recorded.

It reads ``metrics.jsonl``, not the rounds of one process, so a resumed run's
summary covers the rounds before the stop too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.run_dir import RunDirectory

if TYPE_CHECKING:  # the federation imports torch and Flower; a summary needs neither
    from server.federation import FederationResult


def epsilon_by_site(records: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each site's epsilon after the last round it trained in (None: no DP)."""
    spent: dict[str, float | None] = {}
    for record in records:
        for p in record["participants"]:
            spent[p["site"]] = p["epsilon"]  # None in the JSON where it is infinite
    return dict(sorted(spent.items()))


def summary_line(summary: dict[str, Any]) -> str:
    """The one line every way of running ends with (``fedlife-sim run``, ``flwr run .``)."""
    accuracy = summary.get("test_accuracy")
    shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
    return (
        f"test accuracy {shown} after {summary['rounds']} rounds "
        f"({summary.get('evaluated_on') or 'no evaluation'}), {summary['wall_s']:.1f} s; "
        f"run directory {summary['run_dir']}"
    )


def summarize(result: FederationResult, run_dir: RunDirectory, wall_s: float) -> dict[str, Any]:
    records = run_dir.completed_rounds()
    last = records[-1] if records else None
    final = (last["central"] or last["federated"]) if last else {}
    summary = {
        "run_id": result.run_id,
        "run_dir": str(run_dir.path),
        "rounds": len(records),
        "test_accuracy": final.get("accuracy"),
        "test_loss": final.get("loss"),
        "test_auc": final.get("auc"),
        "test_f1": final.get("f1"),
        "evaluated_on": _evaluated_on(last, run_dir),
        "federated_accuracy": last["federated"].get("accuracy") if last else None,
        "epsilon_spent": epsilon_by_site(records),
        "epsilon_budget": _budgets(records),
        "excluded": [e for r in run_dir.rounds() for e in r["excluded"]],
        "stopped_reason": result.stopped_reason,
        "wall_s": round(wall_s, 3),
    }
    run_dir.write_json("summary.json", summary)
    return summary


def _budgets(records: list[dict[str, Any]]) -> dict[str, float | None]:
    budgets = {}
    for record in records:
        for p in record["participants"]:
            budgets[p["site"]] = p["epsilon_budget"] if p["epsilon_budget"] > 0 else None
    return dict(sorted(budgets.items()))


def _evaluated_on(last: dict[str, Any] | None, run_dir: RunDirectory) -> str:
    if "evaluation" in run_dir.info():  # encrypted aggregation: the sites only
        return str(run_dir.info()["evaluation"])
    return "central test split" if last and last["central"] else "sites' local data"
