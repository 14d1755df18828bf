"""An incremental prepare's commit: the new pieces' rows read and cleaned, then added to
every table as one new version each (``prepare`` decides when an increment will do)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from client.pipeline import incremental
from client.pipeline.clean import CleaningReport
from client.pipeline.gate import gate, gate_columns, rows_meeting
from client.pipeline.raw_copies import piece_copies
from client.privacy.pseudonyms import without_personal
from client.retention.erasure import without_erased
from client.retention.retain import without_expired
from client.store import SiteStore, TableVersion
from common.config import SiteConfig
from common.errors import DataError


def read_planned(
    config: SiteConfig, store: SiteStore, planned: incremental.Plan
) -> tuple[tuple[incremental.Piece, ...], incremental.Increment | DataError]:
    """The planned pieces read and cleaned (or the data error that stopped it)."""
    try:
        with tempfile.TemporaryDirectory(prefix="fedlife-increment-") as work:
            return planned.pieces, incremental.read_increment(
                config, store, planned.pieces, Path(work)
            )
    except DataError as error:
        return planned.pieces, error


def commit_increment(
    config: SiteConfig,
    store: SiteStore,
    latest: TableVersion,
    planned: incremental.Plan,
    lineage: dict[str, str],
    step: Callable[[str], None],
    increment: incremental.Increment,
) -> tuple[TableVersion, CleaningReport, list[str]]:
    """Add the planned pieces' rows, read and cleaned: one new version of each table.

    Returns the clean version, the cleaning report and the gate's reasons (none: passed).
    """
    raw_record = {"raw_version": ""}
    if not config.site.keep_raw_table:
        with tempfile.TemporaryDirectory(prefix="fedlife-increment-") as work:
            raw_record["raw_files"] = json.dumps(piece_copies(config, planned, Path(work)))
    result = without_expired(config, without_erased(config, increment.result))
    result = result.keep_rows(lambda frame: without_personal(frame, config.schema))
    for rule in config.quality.rules:
        rows_meeting(result.clean.head(0), rule)  # a bad rule fails before any write
    base = latest.lineage
    names = {Path(p).name: p for p in json.loads(lineage["inputs"])}
    added_rows = {names[n]: rows for n, rows in result.rows_by_file.items() if n in names}
    nulls = incremental.merged_counts(json.loads(base.get("null_counts", "{}")), result.null_counts)
    valid = int(base.get("rows_valid", 0)) + result.rows_valid
    rows_read = int(base.get("rows_read", 0)) + result.report.rows_read
    rejected = incremental.merged_counts(
        json.loads(base.get("rejected", "{}")), result.report.rejected
    )
    missing = {c: n / valid for c, n in nulls.items()} if valid else {}
    lineage = {
        **lineage,
        incremental.FILE_ROWS: json.dumps(
            incremental.merged_counts(
                json.loads(base.get(incremental.FILE_ROWS, "{}")), added_rows
            ),
            sort_keys=True,
        ),
        "mode": "incremental",
        "base_version": str(latest.version),
        "added": json.dumps(increment.added),
    }
    # Rows are only added (none replaced) and no rule tests every row: the gate needs
    # only counts, and the label classes are the old ones and the new rows'.
    old_classes = base.get(incremental.CLASSES)
    counted = not config.quality.rules and not increment.replacing and old_classes is not None
    if counted:
        assert old_classes is not None  # counted says so
        classes = sorted(
            {*json.loads(old_classes), *incremental.label_classes(result.clean, config)}
        )
        lineage[incremental.CLASSES] = json.dumps(classes)
        counts = (int(base.get("rows", 0)) + result.clean.height, len(classes))
        reasons = gate(result.clean.head(0), config, missing, counts=counts)
        lineage["gate"] = "pass" if not reasons else "; ".join(reasons)
    step("writing tables")
    if config.site.keep_raw_table:
        raw = store.append("raw", result.raw, {"operation": "ingest", **lineage}, archive=True)
        raw_record["raw_version"] = str(raw.version)
    quarantine = store.append(
        "quarantine",
        result.validated.quarantine,
        {"operation": "quarantine", **raw_record, **lineage},
        archive=True,
    )
    replacing = increment.replacing
    unlabeled = store.latest("unlabeled")
    if result.unlabeled.height or unlabeled is not None:
        unlabeled = store.append(
            "unlabeled",
            result.unlabeled,
            {"operation": "unlabeled", **raw_record, **lineage},
            replacing=replacing,
        )
    report = result.report
    clean_version = store.append(
        "clean",
        result.clean,
        {
            "operation": "clean",
            **raw_record,
            "quarantine_version": str(quarantine.version),
            "unlabeled_version": "" if unlabeled is None else str(unlabeled.version),
            "rows_read": str(rows_read),
            "rejected": json.dumps(rejected),
            "missing": json.dumps(missing),
            "rows_valid": str(valid),
            "null_counts": json.dumps(nulls),
            "replaced": str(len(replacing)),
            **lineage,
        },
        replacing=replacing,
    )
    report.rows_clean = int(clean_version.lineage["rows"])
    if not counted:  # only the columns the gate tests
        frame = store.read_columns("clean", gate_columns(config), clean_version.version)
        reasons = gate(frame, config, missing)
    return clean_version, report, reasons
