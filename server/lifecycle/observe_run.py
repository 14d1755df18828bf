"""``retrain``'s query on a deployment: a run that only asks the sites about their data.

With ``observe-only`` the ServerApp sends one statistics query (the sites' own
``site_statistics`` on the parent model's bins: aggregates, small bins suppressed),
trains nothing, and writes ``observation.json``: one
:class:`~server.lifecycle.observation.SiteAnswer` per site that answered.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from common import keys
from common.errors import RunDirError
from common.features import FeatureSpec
from common.run_config import RunConfig
from server.lifecycle.observation import SiteAnswer
from server.run_dir import RunDirectory
from server.site_exchange import SiteExchange
from server.site_profile import query_statistics

OBSERVATION = "observation.json"


def observe_sites_only(sites: SiteExchange, config: RunConfig, run_dir: RunDirectory) -> dict:
    """Query every site on ``config.parent_run``'s bins; write and return the answers."""
    if not config.parent_run:
        raise RunDirError("observe-only needs parent-run: the model whose bins to compare on")
    # Here, not at the top: the lineage reads the registry, which needs torch, and the
    # coordinator's CLI imports this module for every command.
    from server.lifecycle.warm_start import parent_lineage

    lineage = parent_lineage(config.parent_run, config.parent_round)
    info = RunDirectory(lineage["run_dir"]).read_json("run.json")
    spec = FeatureSpec.from_json(info["feature_spec"])
    run_id = run_dir.start(config.to_flower())
    replies, excluded = query_statistics(sites, run_id, spec)
    answers = []
    for reply in replies:
        # The reply was validated: the site record holds the scalars its contract declares.
        site = cast(Mapping[str, Any], reply.content[keys.SITE])
        statistics = json.loads(str(reply.content[keys.STATISTICS][keys.STATISTICS]))
        budget = float(site[keys.EPSILON_BUDGET])
        spent = float(site[keys.EPSILON]) if keys.EPSILON in site else None
        left = None if budget < 0 or spent is None else _left(budget, spent)
        answers.append(
            SiteAnswer(
                str(site[keys.SITE_NAME]),
                int(statistics["version"]),
                statistics["histograms"],
                left,
            )
        )
    record = {"parent": lineage, "answers": [asdict(a) for a in answers], "excluded": excluded}
    run_dir.write_json(OBSERVATION, record)
    return record


def read_answers(run_dir: str | Path) -> list[SiteAnswer]:
    """The answers an observe-only run wrote."""
    path = Path(run_dir) / OBSERVATION
    if not path.exists():
        raise RunDirError(f"{run_dir}: the query wrote no {OBSERVATION} (see the log above)")
    record: dict[str, Any] = RunDirectory(run_dir).read_json(OBSERVATION)
    return [SiteAnswer(**answer) for answer in record["answers"]]


def _left(budget: float, spent: float) -> float:
    return max(0.0, budget - spent) if math.isfinite(spent) else 0.0
