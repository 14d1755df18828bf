"""``prepare``: raw files -> ingest -> clean -> versioned Delta tables, with a gate."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import polars as pl

from client.pipeline import CleaningReport, clean, ingest, raw_files
from client.store import SiteStore, TableVersion, sha256_of
from common.config import SiteConfig


@dataclass
class PrepareResult:
    """Outcome of one ``prepare``: the clean version and what happened to the rows."""

    clean: TableVersion
    report: CleaningReport
    unchanged: bool
    gate_reasons: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return not self.gate_reasons


def config_hash(config: SiteConfig) -> str:
    text = config.model_dump_json(by_alias=True, exclude={"base_dir"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def gate(frame: pl.DataFrame, config: SiteConfig) -> list[str]:
    """Reasons the clean data fails the site's quality gate (empty = passes)."""
    reasons = []
    if frame.height < config.quality.min_rows:
        reasons.append(f"{frame.height} rows, fewer than min_rows={config.quality.min_rows}")
    classes = frame.get_column(config.schema.label).n_unique()
    if classes < config.quality.min_classes:
        reasons.append(f"{classes} label class(es), fewer than {config.quality.min_classes}")
    return reasons


def prepare(config: SiteConfig) -> PrepareResult:
    """Run the pipeline; commit new versions only when the input or config changed."""
    store = SiteStore(config.store_dir)
    inputs = {str(p): sha256_of(p) for p in raw_files(config)}
    lineage = {"config_hash": config_hash(config), "inputs": json.dumps(inputs, sort_keys=True)}
    latest = store.latest("clean")
    if latest and all(latest.lineage.get(k) == v for k, v in lineage.items()):
        frame = store.read("clean")
        report = CleaningReport(rows_read=int(latest.lineage.get("rows_read", 0)))
        report.rows_clean = frame.height
        return PrepareResult(latest, report, unchanged=True, gate_reasons=gate(frame, config))

    raw = ingest(config)
    raw_version = store.write("raw", raw, {"operation": "ingest", **lineage})
    cleaned, report = clean(raw, config)
    reasons = gate(cleaned, config)
    clean_version = store.write(
        "clean",
        cleaned,
        {
            "operation": "clean",
            "raw_version": str(raw_version.version),
            "rows_read": str(report.rows_read),
            "gate": "pass" if not reasons else "; ".join(reasons),
            **lineage,
        },
    )
    return PrepareResult(clean_version, report, unchanged=False, gate_reasons=reasons)
