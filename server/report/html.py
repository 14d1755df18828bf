"""The run report: one self-contained HTML page (``report.html``) in the run directory.

It reads what the run wrote (``run.json``, ``metrics.jsonl``, ``statistics.json``,
``summary.json``) and needs no server, script or network to open: figures are
inline SVG data URIs, styles are inline. Sections (their element ids): overview,
performance, participation, privacy, data-quality, drift, fairness, explanations.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from server.report import figures
from server.run_dir import RunDirectory

SECTIONS = (
    "overview",
    "performance",
    "participation",
    "privacy",
    "data-quality",
    "drift",
    "fairness",
    "explanations",
)
_STYLE = """
body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.6em 0}
.flag{color:#b00;font-weight:bold}.empty{color:#777;font-style:italic}
nav a{margin-right:1em}
"""


def write_report(run_dir: RunDirectory) -> Path:
    """Render ``report.html`` from what ``run_dir`` holds; return its path."""
    data = _RunData(run_dir)
    body = [
        _overview(data),
        _performance(data),
        _participation(data),
        _privacy(data),
        _data_quality(data),
        _drift(data),
        _fairness(data),
        _explanations(data),
    ]
    nav = " ".join(f'<a href="#{s}">{s.replace("-", " ")}</a>' for s in SECTIONS)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'
        f"<title>fedlife run {_e(data.run_id)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>fedlife run {_e(data.run_id)}</h1><nav>{nav}</nav>{''.join(body)}</body></html>"
    )
    target = run_dir.path / "report.html"
    temporary = target.with_suffix(".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target


class _RunData:
    """What the report reads from a run directory."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.path = run_dir.path
        self.info = run_dir.info()
        self.all_rounds = run_dir.rounds()
        self.rounds = [r for r in self.all_rounds if "stopped" not in r]
        self.summary = _optional(run_dir, "summary.json")
        self.statistics = _optional(run_dir, "statistics.json")
        self.run_id = self.info.get("run_id", "?")

    @property
    def sites(self) -> list[str]:
        names = {p["site"] for r in self.all_rounds for p in r["participants"]}
        names |= {e["site"] for r in self.all_rounds for e in r["excluded"]}
        names |= set(self.statistics.get("quality", {}))
        return sorted(names)

    def last_with(self, key: str) -> dict[str, Any]:
        """The latest round's non-empty ``key`` record (fairness, importance)."""
        return next((r[key] for r in reversed(self.rounds) if r.get(key)), {})


def _optional(run_dir: RunDirectory, name: str) -> dict[str, Any]:
    return run_dir.read_json(name) if (run_dir.path / name).exists() else {}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _section(section_id: str, title: str, *parts: str) -> str:
    return f'<section id="{section_id}"><h2>{_e(title)}</h2>{"".join(parts)}</section>'


def _figure(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">' if uri else ""


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _table(header: list[str], rows: list[list[Any]], flags: list[bool] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = ' class="flag"' if flags and flags[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_e(_fmt(v))}</td>" for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _overview(data: _RunData) -> str:
    config = data.info.get("config", {})
    s = data.summary
    rows: list[list[Any]] = [
        ["run directory", str(data.path)],
        ["strategy / model", f"{config.get('strategy', '?')} / {config.get('model', '?')}"],
        ["rounds completed", f"{len(data.rounds)} of {config.get('num-server-rounds', '?')}"],
        ["sites", len(data.sites)],
        ["test accuracy", s.get("test_accuracy")],
        ["evaluated on", s.get("evaluated_on")],
        ["stopped early", s.get("stopped_reason") or "no"],
        ["wall time (s)", s.get("wall_s")],
    ]
    return _section("overview", "Overview", _table(["", ""], rows))


def _performance(data: _RunData) -> str:
    if not data.rounds:
        return _section("performance", "Accuracy and loss", _empty("no completed round"))
    last = data.rounds[-1]
    rows = [
        [site, m.get("accuracy"), m.get("loss"), m.get("num-examples")]
        for site, m in sorted(last["per_site"].items())
    ]
    for source in ("federated", "central"):
        if last[source]:
            rows.append(
                [
                    f"{source} (global)",
                    last[source].get("accuracy"),
                    last[source].get("loss"),
                    last[source].get("num-examples"),
                ]
            )
    return _section(
        "performance",
        "Accuracy and loss",
        _figure(figures.performance(data.rounds), "accuracy and loss per round"),
        f"<p>After round {last['round']}:</p>",
        _table(["evaluated by", "accuracy", "loss", "examples"], rows),
    )


def _participation(data: _RunData) -> str:
    # Sites that declared different public ranges or categories (server/contract_check.py).
    contract = "".join(
        f'<p class="flag">feature contract: {_e(w)}</p>'
        for w in data.info.get("contract_warnings", [])
    )
    if not data.all_rounds:
        return _section(
            "participation", "Participation and exclusions", contract, _empty("no round")
        )
    exclusions = [
        ["profile", e["site"], e["reason"]] for e in data.info.get("profile_excluded", [])
    ]
    for record in data.all_rounds:
        exclusions += [[record["round"], e["site"], e["reason"]] for e in record["excluded"]]
        exclusions += [[record["round"], "-", failure] for failure in record.get("failures", [])]
    stopped = [r["stopped"] for r in data.all_rounds if "stopped" in r]
    return _section(
        "participation",
        "Participation and exclusions",
        contract,
        _figure(figures.participation(data.all_rounds, data.sites), "participation per round"),
        _table(["round", "site", "reason"], exclusions)
        if exclusions
        else _empty("no site was excluded"),
        "".join(f'<p class="flag">stopped: {_e(s)}</p>' for s in stopped),
    )


def _privacy(data: _RunData) -> str:
    spent: dict[str, tuple[Any, Any]] = {}
    for record in data.rounds:
        for p in record["participants"]:
            budget = p["epsilon_budget"] if p["epsilon_budget"] > 0 else None
            spent[p["site"]] = (p["epsilon"], budget)
    if not spent:
        return _section("privacy", "Privacy spent", _empty("no site trained"))
    rows = [
        [
            s,
            e if e is not None else "no DP (unbounded)",
            b,
            None if e is None or b is None else e / b,
        ]
        for s, (e, b) in sorted(spent.items())
    ]
    return _section(
        "privacy",
        "Privacy spent per site",
        _figure(figures.epsilon(data.rounds), "epsilon per site against budget"),
        _table(["site", "epsilon spent", "budget", "share of budget"], rows),
    )


def _data_quality(data: _RunData) -> str:
    quality = data.statistics.get("quality", {})
    if not quality:
        return _section("data-quality", "Data quality per site", _empty("no site statistics"))
    versions = data.statistics.get("versions", {})
    rows = []
    for site, q in sorted(quality.items()):
        rows.append(
            [
                site,
                versions.get(site, {}).get("version"),
                q["rows_read"],
                q["rows_rejected"],
                q["rows_clean"],
                q.get("missing_cells_fraction"),
                q["gate"],
            ]
        )
    note = "Counts over fewer than min_group_size rows are withheld by the site (shown as -)."
    return _section(
        "data-quality",
        "Data quality per site",
        _figure(figures.data_quality(quality), "rows and missing shares per site"),
        _table(
            [
                "site",
                "clean version",
                "rows read",
                "rejected",
                "clean rows",
                "missing cells",
                "gate",
            ],
            rows,
        ),
        f"<p>{_e(note)}</p>",
    )


def _drift(data: _RunData) -> str:
    drift = data.statistics.get("drift")
    if not drift or not drift["rows"]:
        return _section("drift", "Drift", _empty("no site sent histograms"))
    threshold = drift["threshold"]
    maps = [
        _figure(figures.drift_heatmap(drift["rows"], which, threshold), f"PSI heatmap {which}")
        for which in ("psi_federation", "psi_previous")
    ]
    if not maps[1]:
        maps[1] = _empty("no site has an earlier clean version to compare with")
    flagged = [
        [r["site"], r["column"], r["kind"], r["psi_federation"], r["psi_previous"]]
        for r in drift["flagged"]
    ]
    table = (
        _table(
            ["site", "column", "kind", "PSI vs federation", "PSI vs previous version"],
            flagged,
            [True] * len(flagged),
        )
        if flagged
        else _empty(f"no site and column above PSI {threshold:g}")
    )
    intro = (
        f"Population stability index of each site's histograms (features on the federation's "
        f"bin edges, categories, and the label '{drift['label']}' for label shift) against the "
        f"federation's merged histograms and against the site's previous clean version. "
        f"Flag: PSI above {threshold:g}. Grey: no PSI, because the site's histogram of the "
        f"column was wholly folded by its small-group rule (e.g. a class with fewer than "
        f"min_group_size rows); such sites are left out of the federation's histogram."
    )
    return _section("drift", "Drift", f"<p>{_e(intro)}</p>", *maps, table)


def _fairness(data: _RunData) -> str:
    found = data.last_with("fairness")
    if not found or not found.get("federated"):
        return _section(
            "fairness",
            "Fairness",
            _empty("no column with role 'sensitive' (or every group below min_group_size)"),
        )
    parts = []
    rows = []
    for attribute, metrics in found["federated"].items():
        parts.append(
            _figure(figures.fairness(metrics["groups"], attribute), f"fairness {attribute}")
        )
        rows.append(
            [
                "federated",
                attribute,
                metrics["demographic_parity_difference"],
                metrics["equalized_odds_difference"],
                metrics["accuracy_difference"],
            ]
        )
    for site, per in found["per_site"].items():
        for attribute, metrics in per.items():
            rows.append(
                [
                    site,
                    attribute,
                    metrics["demographic_parity_difference"],
                    metrics["equalized_odds_difference"],
                    metrics["accuracy_difference"],
                ]
            )
    groups = [
        [
            attribute,
            group,
            g["rows"],
            g["accuracy"],
            g["selection_rate"],
            g["true_positive_rate"],
            g["false_positive_rate"],
        ]
        for attribute, metrics in found["federated"].items()
        for group, g in metrics["groups"].items()
    ]
    return _section(
        "fairness",
        "Fairness across sensitive groups (final model)",
        *parts,
        _table(
            [
                "scope",
                "column",
                "demographic parity diff.",
                "equalized odds diff.",
                "accuracy diff.",
            ],
            rows,
        ),
        _table(["column", "group", "rows", "accuracy", "selection rate", "TPR", "FPR"], groups),
    )


def _explanations(data: _RunData) -> str:
    found = data.last_with("importance")
    if not found:
        return _section(
            "explanations", "Feature attributions", _empty("no site sent feature importance")
        )
    rows = [[name, value] for name, value in list(found["federated"].items())[:30]]
    return _section(
        "explanations",
        "Feature attributions (final model)",
        f"<p>{_e(found['method'])}; computed at each site on its own rows.</p>",
        _figure(figures.importance(found["federated"]), "feature importance"),
        _table(["feature", "importance"], rows),
    )
