"""``prepare``: raw files -> validated -> clean, each a versioned Delta table, then the gate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from client.pipeline import pipeline
from client.pipeline.clean import CleaningReport
from client.retention.erasure import ErasureRequests, without_erased
from client.retention.retain import without_expired
from client.site_audit import site_audit
from client.store import SiteStore, TableVersion, keep_raw_files, sha256_of
from common.config import ColumnType, Role, SiteConfig, row_dependent_cleaning
from common.errors import ConfigError

StepObserver = Callable[[str], None]


@dataclass
class PrepareResult:
    """Outcome of one ``prepare``: the clean version and what happened to the rows."""

    clean: TableVersion
    report: CleaningReport
    unchanged: bool
    gate_reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return not self.gate_reasons


def schema_warnings(config: SiteConfig) -> list[str]:
    """What in the schema will not do what it says: free-text columns with role feature."""
    return [
        f"column {name!r} is text with role 'feature': the model does not use free text; "
        "set role 'ignore' (or 'pii'), or type 'category' for codes"
        for name, spec in config.schema.columns.items()
        if spec.role is Role.FEATURE and spec.type is ColumnType.TEXT
    ]


def config_hash(config: SiteConfig) -> str:
    text = config.model_dump_json(by_alias=True, exclude={"base_dir", "labeling"})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GateFailure:
    """One rule of the quality gate that the clean data fails.

    Parameters
    ----------
    rule : which rule failed, with its public threshold: what may leave the site.
    detail : the same with the measured counts or shares, for the site's operator
        only (a count of failing rows is a fact about rows).
    """

    rule: str
    detail: str


def gate_failures(
    frame: pl.DataFrame, config: SiteConfig, missing: dict[str, float] | None = None
) -> list[GateFailure]:
    """The rules of the site's quality gate the clean data fails (empty = passes)."""
    quality = config.quality
    failures = []
    if config.privacy.enabled:
        for setting in row_dependent_cleaning(config.cleaning):
            text = (
                f"{setting} makes a row's features depend on other rows, which DP does not "
                "account for: use impute 'center', 'constant' or 'drop' and outliers 'clip' "
                "(or [privacy] enabled = false)"
            )
            failures.append(GateFailure(text, text))
    if frame.height < quality.min_rows:
        failures.append(
            GateFailure(
                f"fewer rows than min_rows={quality.min_rows}",
                f"{frame.height} rows, fewer than min_rows={quality.min_rows}",
            )
        )
    classes = frame.get_column(config.schema.label).n_unique()
    if classes < quality.min_classes:
        failures.append(
            GateFailure(
                f"fewer label classes than min_classes={quality.min_classes}",
                f"{classes} label class(es), fewer than {quality.min_classes}",
            )
        )
    for column, share in sorted((missing or {}).items()):
        if share > quality.max_missing_fraction:
            limit = quality.max_missing_fraction
            failures.append(
                GateFailure(
                    f"{column}: more missing than max_missing_fraction={limit}",
                    f"{column}: {share:.0%} missing, above max_missing_fraction={limit}",
                )
            )
    for rule in quality.rules:
        broken = frame.height - _rows_meeting(frame, rule).height
        if broken:
            failures.append(
                GateFailure(f"rule '{rule}' fails", f"rule '{rule}' fails on {broken} row(s)")
            )
    return failures


def gate(
    frame: pl.DataFrame, config: SiteConfig, missing: dict[str, float] | None = None
) -> list[str]:
    """Reasons the clean data fails the site's quality gate, for its operator (empty = passes)."""
    return [failure.detail for failure in gate_failures(frame, config, missing)]


def _rows_meeting(frame: pl.DataFrame, rule: str) -> pl.DataFrame:
    """The rows where ``rule`` holds; a rule that cannot be evaluated is a config error."""
    try:
        return frame.filter(pl.sql_expr(rule))
    except pl.exceptions.PolarsError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"quality rule '{rule}' cannot be evaluated ({first_line})") from None


def store_raw_files(config: SiteConfig, inputs: dict[str, str]) -> dict[str, str]:
    """Keep content-addressed copies of the raw files; name each file's digest and copy.

    A raw file holds every subject verbatim, erased ones too (the site's files are never
    modified): once any erasure was requested, only the digests are recorded, no copy.
    """
    copies = {}
    if not ErasureRequests(config.store_dir).all():
        copies = keep_raw_files(config.store_dir, inputs)
    return {
        path: {"sha256": digest, "copy": copies.get(path, "")} for path, digest in inputs.items()
    }


def prepare(config: SiteConfig, on_step: StepObserver | None = None) -> PrepareResult:
    """Run the pipeline; commit new versions only when the input or config changed."""
    step = on_step or (lambda name: None)
    store = SiteStore(config.store_dir)
    step("checking input")
    inputs = {str(p): sha256_of(p) for p in pipeline.raw_files(config)}
    lineage = {"config_hash": config_hash(config), "inputs": json.dumps(inputs, sort_keys=True)}
    latest = store.latest("clean")
    if latest and all(latest.lineage.get(k) == v for k, v in lineage.items()):
        frame = store.read("clean")
        report = CleaningReport(rows_read=int(latest.lineage.get("rows_read", 0)))
        report.rows_clean = frame.height
        missing = json.loads(latest.lineage.get("missing", "{}"))
        return PrepareResult(
            latest, report, True, gate(frame, config, missing), schema_warnings(config)
        )

    step("reading and validating")
    result = without_expired(config, without_erased(config, pipeline.run(config)))
    for rule in config.quality.rules:
        _rows_meeting(result.clean.head(0), rule)  # a bad rule fails before any write
    reasons = gate(result.clean, config, result.missing)
    step("writing tables")
    if config.site.keep_raw_table:
        raw_version = store.write(
            "raw", result.raw, {"operation": "ingest", **lineage}, archive=True
        ).version
        raw_record = {"raw_version": str(raw_version)}
    else:
        # The record of which input made this version is the raw files' bytes, kept
        # once each by content; no second copy of every row as text.
        raw_record = {"raw_version": "", "raw_files": json.dumps(store_raw_files(config, inputs))}
    quarantine = store.write(
        "quarantine",
        result.validated.quarantine,
        {"operation": "quarantine", **raw_record, **lineage},
        archive=True,
    )
    report = result.report
    unlabeled = store.latest("unlabeled")
    if result.unlabeled.height or unlabeled is not None:  # no empty table for fully labeled sites
        unlabeled = store.write(
            "unlabeled",
            result.unlabeled,
            {"operation": "unlabeled", **raw_record, **lineage},
        )
    clean_version = store.write(
        "clean",
        result.clean,
        {
            "operation": "clean",
            **raw_record,
            "quarantine_version": str(quarantine.version),
            "unlabeled_version": "" if unlabeled is None else str(unlabeled.version),
            "rows_read": str(report.rows_read),
            "rejected": json.dumps(report.rejected),
            "missing": json.dumps(result.missing),
            "gate": "pass" if not reasons else "; ".join(reasons),
            **lineage,
        },
    )
    site_audit(config).append(
        "prepare",
        clean_version=clean_version.version,
        rows_read=report.rows_read,
        rows_clean=report.rows_clean,
        rows_quarantined=sum(report.rejected.values()),
        gate="pass" if not reasons else "fail",
    )
    return PrepareResult(
        clean_version,
        report,
        unchanged=False,
        gate_reasons=reasons,
        warnings=schema_warnings(config),
    )
