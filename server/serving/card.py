"""The model card: what a model is for, where it came from, what it costs in privacy.

Everything here is what the coordinator legitimately holds: the lineage of the
checkpoint (sites, table versions, rows as the sites released them), the epsilon the
sites' ledgers composed, the metrics and fairness/importance assessments the sites
sent (aggregates of groups of at least the sites' minimum size) and the drift in
``statistics.json``. No row of any site is read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.features import FeatureSpec
from common.histograms import released_bins
from common.stats import OTHER, CategoryStats
from server.registry.registry import ModelRecord, Registry

CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
REFERENCE = "reference_histograms.json"

INTENDED_USE = (
    "Scores records shaped like the federation's sites' rows (same columns, units and "
    "categories) for the label the federation trained on. Decision support only: "
    "check it on your own population before use."
)
LIMITS = (
    "Trained with differential privacy, so accuracy is below a non-private model's. "
    "Values outside the public ranges are clipped; missing values are filled with the "
    "federation's center. Populations unlike the sites' (see drift) are out of scope."
)


def model_card(registry: Registry, record: ModelRecord, spec: FeatureSpec) -> dict[str, Any]:
    """The card of ``record``'s checkpoint as JSON-ready data (what ``GET /model`` shows)."""
    run = registry.run
    lines = {int(r["round"]): r for r in run.rounds() if "round" in r}
    line = lines.get(record.round, {})
    statistics = _optional_json(run.path / "statistics.json")
    summary = _optional_json(run.path / "summary.json")
    drift = statistics.get("drift") or {}
    return {
        "name": f"fedlife-{record.run_id}-round-{record.round}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": record.run_id,
        "round": record.round,
        "config_hash": record.config_hash,
        "model": record.model,
        "strategy": record.strategy,
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
        "features": list(spec.features),
        "label": spec.label,
        "classes": list(spec.classes),
        "lineage": {
            "sites": [
                {
                    "site": s["site"],
                    "table_version": s["table_version"],
                    "rows_released": s["num_examples"],
                }
                for s in record.sites
            ],
            "excluded": record.excluded,
            "unlearning": record.unlearning,
            "dataset": summary.get("dataset"),
        },
        "privacy": {
            "epsilon": record.epsilon,
            "epsilon_budget": {s["site"]: s["epsilon_budget"] for s in record.sites},
            "delta": {p["site"]: p.get("delta") for p in line.get("participants", [])},
            "accountant": "Opacus RDP accountant at each site (DP-SGD, Gaussian noise)",
            "unit_of_privacy": "a row, or a subject where a site declares an id column",
            "central_dp": registry.config.get("central-dp", "off"),
        },
        "metrics": {
            "evaluated_on": record.evaluated_on,
            "federated": line.get("federated") or {},
            "central": line.get("central") or {},
            "per_site": line.get("per_site") or {},
        },
        "fairness": line.get("fairness") or {},
        "feature_importance": line.get("importance") or {},
        "drift": {
            "threshold": drift.get("threshold", registry.config.get("drift-threshold")),
            "flagged_at_training": [
                {k: r.get(k) for k in ("site", "column", "psi_federation", "psi_previous")}
                for r in drift.get("flagged", [])
            ],
        },
    }


def reference_histograms(run_dir: Path) -> dict[str, CategoryStats]:
    """The training histogram of every input column, from the sites' releases.

    Not the federation histogram of the run report, which keeps only the bins EVERY
    site released: one small site folds most bins into '__other__' there. Served
    records have no '__other__', so a reference with one reads as drift where there
    is none. Each site's '__other__' (rows in the bins it folded, too small to
    release) is spread over the bins it did not release in the proportions the
    other sites released for them; counts are kept in hundredths (PSI uses shares).
    A site that released a column only as '__other__' is left out of it.
    """
    drift = _optional_json(Path(run_dir) / "statistics.json").get("drift") or {}
    label = drift.get("label")
    by_column: dict[str, list[CategoryStats]] = {}
    for table in (drift.get("sites") or {}).values():
        for column, histogram in (table.get("columns") or {}).items():
            stats = CategoryStats.from_dict(histogram)
            if column != label and released_bins(stats):
                by_column.setdefault(column, []).append(stats)
    return {column: _unfold(releases) for column, releases in by_column.items()}


def _unfold(releases: list[CategoryStats]) -> CategoryStats:
    pooled: dict[str, int] = {}
    for histogram in releases:
        for name in released_bins(histogram):
            pooled[name] = pooled.get(name, 0) + histogram.counts[name]
    total: dict[str, float] = {}
    for histogram in releases:
        folded = histogram.counts.get(OTHER, 0)
        weights = {b: n for b, n in pooled.items() if b not in histogram.counts}
        spread = sum(weights.values())
        for name in released_bins(histogram):
            total[name] = total.get(name, 0.0) + histogram.counts[name]
        for name, weight in weights.items():
            total[name] = total.get(name, 0.0) + folded * weight / spread
        if folded and not spread:
            total[OTHER] = total.get(OTHER, 0.0) + folded
    counts = {name: round(100 * n) for name, n in total.items()}
    return CategoryStats(counts, 100 * sum(h.nulls for h in releases))


def card_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (``model_card.md``)."""
    privacy, lineage, metrics = card["privacy"], card["lineage"], card["metrics"]
    out = [
        f"# Model card: {card['name']}",
        "",
        f"Run `{card['run_id']}`, round {card['round']}, model `{card['model']}`, "
        f"strategy `{card['strategy']}`, config hash `{card['config_hash']}`, "
        f"card written {card['created']}.",
        "",
        "## Intended use",
        "",
        card["intended_use"],
        "",
        "## Limits",
        "",
        card["limits"],
        "",
        f"Input columns: {', '.join(f'`{f}`' for f in card['features'])}; "
        f"label `{card['label']}` with classes {', '.join(card['classes'])}.",
        "",
        "## Training data lineage",
        "",
        "| site | table version | rows (as released) |",
        "|---|---|---|",
        *(
            f"| {s['site']} | {s['table_version']} | {s['rows_released']} |"
            for s in lineage["sites"]
        ),
        "",
        "## Privacy",
        "",
        f"Accountant: {privacy['accountant']}. Unit of privacy: {privacy['unit_of_privacy']}. "
        f"Central DP: {privacy['central_dp']}.",
        "",
        "| site | epsilon spent | budget | delta |",
        "|---|---|---|---|",
        *(
            f"| {site} | {_num(eps)} | {_num(privacy['epsilon_budget'].get(site))} | "
            f"{_num(privacy['delta'].get(site))} |"
            for site, eps in privacy["epsilon"].items()
        ),
        "",
        f"## Metrics ({metrics['evaluated_on'] or 'none recorded'})",
        "",
        *_table({"federated": metrics["federated"], "central": metrics["central"]}),
        *_table(metrics["per_site"]),
        "## Fairness per sensitive group",
        "",
        _json_block(card["fairness"]),
        "## Feature importance",
        "",
        _json_block(card["feature_importance"]),
        "## Known drift",
        "",
        f"PSI threshold {_num(card['drift']['threshold'])}; flagged at training: "
        + (
            ", ".join(f"{r['site']}/{r['column']}" for r in card["drift"]["flagged_at_training"])
            or "none"
        ),
        "",
    ]
    return "\n".join(out)


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    rows = {k: v for k, v in rows.items() if v}
    if not rows:
        return []
    names = sorted({m for v in rows.values() for m in v})
    return [
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
        *(f"| {k} | " + " | ".join(_num(v.get(m)) for m in names) + " |" for k, v in rows.items()),
        "",
    ]


def _json_block(data: Any) -> str:
    if not data:
        return "Not assessed in this run.\n"
    return "```json\n" + json.dumps(data, indent=2, sort_keys=True) + "\n```\n"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _optional_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
