"""Champion beside challenger: both models evaluated at every site in one query.

After a warm-started run's last round every site gets one evaluate message carrying
the challenger's arrays and the champion's (``keys.CHAMPION_ARRAYS``) and answers the
metrics and fairness counts of both on the same held-out rows. ``challenge.json`` in
the challenger's run directory holds them, per site and weighted by each site's examples; it is what
:mod:`server.lifecycle.promotion` decides on and what ``models promote`` requires.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ArrayRecord, ConfigRecord

from common import keys
from common.wire.messages import EvaluateReply
from server.fairness import merge_fairness
from server.lifecycle.promotion import CHALLENGE
from server.replies import read
from server.run_dir import RunDirectory
from server.site_exchange import SiteExchange

METRICS = ("accuracy", "f1", "auc", "loss")


def evaluate_beside(
    sites: SiteExchange,
    strategy: Any,
    server_round: int,
    challenger: ArrayRecord,
    champion: ArrayRecord,
    config: ConfigRecord,
    run_dir: RunDirectory,
    parent: dict[str, Any],
) -> dict[str, Any]:
    """Send both models to every site in one message each; write ``challenge.json``.

    Parameters
    ----------
    sites : the run's sites.
    strategy : the run's strategy (it addresses the evaluate messages).
    server_round : the challenger's last round.
    challenger, champion : the two models' arrays.
    config : the round's config (feature contract, model, seed).
    run_dir : the challenger's run directory.
    parent : the champion's lineage (``warm_start.parent_lineage``).
    """
    messages = list(strategy.configure_evaluate(server_round, challenger, config, sites.grid))
    for message in messages:
        message.content[keys.CHAMPION_ARRAYS] = champion
    failures: list[str] = []
    per_site: dict[str, dict[str, Any]] = {}
    fairness: dict[str, dict[str, str]] = {"champion": {}, "challenger": {}}
    for sorted_reply in (read(r, EvaluateReply) for r in sites.exchange(messages, failures)):
        answer = sorted_reply.answer
        if not isinstance(answer, EvaluateReply) or answer.champion_metrics is None:
            reason = sorted_reply.failure or (sorted_reply.excluded or {}).get("reason")
            failures.append(reason or f"{sorted_reply.site}: no champion metrics")
            continue
        site = answer.site.name
        per_site[site] = {
            "challenger": _metrics(answer.metrics.to_record()),
            "champion": _metrics(answer.champion_metrics.to_record()),
            "num_examples": answer.metrics.num_examples,
        }
        if answer.champion_fairness is not None:
            fairness["challenger"][site] = answer.assessment.fairness
            fairness["champion"][site] = answer.champion_fairness.fairness
    record = {
        "champion": parent,
        "challenger": {
            "run_dir": str(run_dir.path.resolve()),
            "run_id": run_dir.info().get("run_id", ""),
            "round": server_round,
        },
        "sites": dict(sorted(per_site.items())),
        "federated": {role: weighted(per_site, role) for role in ("champion", "challenger")},
        "fairness": {role: merge_fairness(texts) for role, texts in fairness.items()},
        "failures": failures,
    }
    run_dir.write_json(CHALLENGE, record)
    return record


def weighted(per_site: dict[str, dict[str, Any]], role: str) -> dict[str, float | None]:
    """Each metric of ``role`` averaged over the sites, weighted by their examples."""
    result: dict[str, float | None] = {}
    for metric in METRICS:
        pairs = [
            (s[role][metric], s["num_examples"])
            for s in per_site.values()
            if s[role].get(metric) is not None
        ]
        total = sum(n for _, n in pairs)
        result[metric] = sum(v * n for v, n in pairs) / total if total else None
    return result


def _metrics(record: Any) -> dict[str, float | None]:
    values = {}
    for name in METRICS:
        value = float(record[name]) if name in record else None
        values[name] = None if value is None or value != value else value  # NaN: none
    return values
