"""``prepare``: raw files -> validated -> clean, each a versioned Delta table, then the gate."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from client.pipeline import incremental, pipeline, streamed
from client.pipeline.clean import CleaningReport
from client.pipeline.gate import GateFailure, gate, gate_failures, rows_meeting
from client.pipeline.increment_commit import commit_increment, read_planned
from client.pipeline.raw_copies import store_raw_files
from client.pipeline.staging import stage
from client.pipeline.unfinished import unfinished_prepare
from client.privacy.pseudonyms import without_personal
from client.retention.erasure import ErasureRequests, without_erased
from client.retention.pseudonymize import ensure_pseudonymized
from client.retention.retain import expiry_cutoff, without_expired
from client.site_audit import site_audit
from client.store import SiteStore, TableVersion
from common.config import ColumnType, Role, SiteConfig
from common.errors import DataError

StepObserver = Callable[[str], None]
# The lineage key naming the unfinished prepare whose versions a prepare follows.
SUPERSEDES = "supersedes_prepare"
__all__ = ["GateFailure", "PrepareResult", "gate", "gate_failures", "prepare", "store_raw_files"]


@dataclass
class PrepareResult:
    """Outcome of one ``prepare``: the clean version and what happened to the rows."""

    clean: TableVersion
    report: CleaningReport
    unchanged: bool
    gate_reasons: list[str] = field(default_factory=list)
    incremental: bool = False  # only what was new was read and added
    notice: str = ""  # why everything was read again, where the last version said why not
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
    # A column's class changes nothing prepare does: declaring one re-prepares nothing.
    unused = {"columns": {"__all__": {"data_class"}}}
    text = config.model_dump_json(
        by_alias=True, exclude={"base_dir": True, "labeling": True, "schema_": unused}
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(
    config: SiteConfig, on_step: StepObserver | None = None, *, out_of_core: bool | None = None
) -> PrepareResult:
    """Run the pipeline; commit new versions only when the input or config changed.

    Where only new raw files or rows appended to old ones are new since the latest
    clean version, only those are read and added (``client.pipeline.incremental``).

    Parameters
    ----------
    config : the site's config.
    on_step : told the name of each step as it starts.
    out_of_core : read and clean through a stage on disk in bounded memory
        (``client.pipeline.streamed``) where that route is exact; default: where the
        raw files are larger than ``streamed.OUT_OF_CORE_BYTES``.
    """
    with ExitStack() as held:  # the out-of-core route's stage, until its tables are written
        return _prepare(config, on_step or (lambda name: None), held, out_of_core=out_of_core)


def _prepare(
    config: SiteConfig, step: StepObserver, held: ExitStack, *, out_of_core: bool | None
) -> PrepareResult:
    """``prepare``'s work; a stage it makes is entered on ``held``."""
    ensure_pseudonymized(config, create=True)  # a store with clear ids is migrated first
    store = SiteStore(config.store_dir)
    step("checking input")
    store.verify_latest()  # never build on (or over) a table whose files were altered
    latest = store.latest("clean")
    stopped = unfinished_prepare(store)
    known = json.loads(latest.lineage.get(incremental.SIZES, "{}")) if latest else {}
    files = pipeline.raw_files(config)
    same_config = latest is not None and latest.lineage.get("config_hash") == config_hash(config)
    through_stage = _out_of_core(config, files, chosen=out_of_core)
    reading: Future[pipeline.PipelineResult] | None = None
    staging: Future[streamed.Streamed | None] | None = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Hashing every byte (the old ones prove they did not change) is most of an
        # incremental prepare's time: the new bytes are read and cleaned meanwhile, on
        # the presumption that old files only grew, and used only if the hashes agree.
        scanning = pool.submit(incremental.scan, files, known)
        early = None
        if not same_config:
            # No version, or another config: all rows are read again whatever the
            # hashes say, so they are read and cleaned (or staged) while the files are
            # hashed.
            step("reading and validating")
            if through_stage:
                work = Path(held.enter_context(stage(config)))
                staging = pool.submit(streamed.run, config, files, work, step)
            else:
                reading = pool.submit(pipeline.run, config)
        if same_config:
            guess = incremental.plan(
                config, store, latest, incremental.presumed(files, latest.lineage)
            )
            if not guess.full and guess.pieces:
                try:
                    early = read_planned(config, store, guess)
                except Exception:  # noqa: BLE001 - a presumption the hashes may refute
                    early = None  # read again below if the plan stands
        scanned = scanning.result()
    inputs = scanned.digests
    lineage = {"config_hash": config_hash(config), "inputs": json.dumps(inputs, sort_keys=True)}
    same_input = latest and all(latest.lineage.get(k) == v for k, v in lineage.items())
    if same_input and stopped is None:
        frame = store.read("clean")
        report = CleaningReport(rows_read=int(latest.lineage.get("rows_read", 0)))
        report.rows_clean = frame.height
        missing = json.loads(latest.lineage.get("missing", "{}"))
        return PrepareResult(
            latest, report, True, gate(frame, config, missing), warnings=schema_warnings(config)
        )
    lineage[incremental.SIZES] = json.dumps(scanned.sizes, sort_keys=True)
    lineage[incremental.RUN] = uuid.uuid4().hex
    lineage["erasure_requests"] = str(len(ErasureRequests(config.store_dir).all()))
    notice = ""
    if stopped is not None:
        # This prepare's versions follow the stopped one's: their lineage says why.
        lineage[SUPERSEDES] = stopped.run
        stopped.audit(config)
    if same_config:
        planned = incremental.plan(config, store, latest, scanned)
        notice = planned.notice
        if not planned.full:
            if early is None or early[0] != planned.pieces:
                early = read_planned(config, store, planned)
            increment = early[1]
            if not isinstance(increment, DataError):
                clean_version, report, reasons = commit_increment(
                    config, store, latest, planned, lineage, step, increment
                )
                _audit(config, clean_version, report, reasons, mode="incremental")
                return PrepareResult(
                    clean_version,
                    report,
                    unchanged=False,
                    gate_reasons=reasons,
                    incremental=True,
                    warnings=schema_warnings(config),
                )
            # A check over all rows (a mistyped column is one where most values fail)
            # cannot be made on the new rows alone; nothing was written.
            notice = "the new rows fail a check on their own: full rebuild"

    if stopped is not None:
        notice = stopped.lead(notice)
    if reading is None and staging is None:
        step("reading and validating")
    if through_stage:
        if staging is None:
            work = Path(held.enter_context(stage(config)))
            staged = streamed.run(config, files, work, step)
        else:
            staged = staging.result()
        if staged is not None:
            counts = (staged.clean_rows, len(staged.classes))
            reasons = gate(staged.clean.head(0).collect(), config, staged.missing, counts=counts)
            full = _Full(staged.validated.quarantine, staged.clean, staged.unlabeled, reasons)
            full.rows = (staged.clean_rows, staged.unlabeled_rows)
            full.classes = staged.classes
            return _commit_full(config, store, staged, full, inputs, lineage, step, notice)
    read = pipeline.run(config) if reading is None else reading.result()
    result = without_expired(config, without_erased(config, read))
    for rule in config.quality.rules:
        rows_meeting(result.clean.head(0), rule)  # a bad rule fails before any write
    reasons = gate(result.clean, config, result.missing)
    full = _Full(result.validated.quarantine, result.clean, result.unlabeled, reasons)
    full.rows = (result.clean.height, result.unlabeled.height)
    full.classes = incremental.label_classes(result.clean, config)
    return _commit_full(config, store, result, full, inputs, lineage, step, notice)


@dataclass
class _Full:
    """The tables a full prepare writes (frames or plans) and what the gate said."""

    quarantine: pl.DataFrame
    clean: pl.DataFrame | pl.LazyFrame
    unlabeled: pl.DataFrame | pl.LazyFrame
    reasons: list[str]
    rows: tuple[int, int] = (0, 0)  # clean, unlabeled
    classes: list[str] = field(default_factory=list)


def _out_of_core(config: SiteConfig, files: list[Path], *, chosen: bool | None) -> bool:
    if expiry_cutoff(config) is not None or (
        ErasureRequests(config.store_dir).all() and config.schema.first_with(Role.ID)
    ):
        return False  # retention and erasure filter every table in memory
    return streamed.wanted(config, files, chosen=chosen)


def _commit_full(
    config: SiteConfig,
    store: SiteStore,
    result: pipeline.PipelineResult | streamed.Streamed,
    full: _Full,
    inputs: dict[str, str],
    lineage: dict[str, str],
    step: StepObserver,
    notice: str,
) -> PrepareResult:
    """Write a full prepare's tables (raw record, quarantine, unlabeled, clean)."""
    step("writing tables")
    reasons, report = full.reasons, result.report
    schema = config.schema  # pii columns are validated, never stored
    rows_read = report.rows_read
    names = {Path(p).name: p for p in inputs}
    by_file = {names[n]: int(rows) for n, rows in result.rows_by_file.items() if n in names}
    lineage[incremental.FILE_ROWS] = json.dumps(by_file, sort_keys=True)
    lineage[incremental.CLASSES] = json.dumps(full.classes)
    if config.site.keep_raw_table:
        raw_version = store.write(
            "raw",
            without_personal(result.raw, schema),
            {"operation": "ingest", **lineage},
            archive=True,
            rows=rows_read,
        ).version
        raw_record = {"raw_version": str(raw_version)}
    else:
        # The record of which input made this version is the raw files' bytes, kept
        # once each by content; no second copy of every row as text.
        raw_record = {"raw_version": "", "raw_files": json.dumps(store_raw_files(config, inputs))}
    step("writing the quarantine")
    quarantine = store.write(
        "quarantine",
        without_personal(full.quarantine, schema),
        {"operation": "quarantine", **raw_record, **lineage},
        archive=True,
    )
    unlabeled = store.latest("unlabeled")
    if full.rows[1] or unlabeled is not None:  # no empty table for fully labeled sites
        step("writing the unlabeled rows")
        unlabeled = store.write(
            "unlabeled",
            without_personal(full.unlabeled, schema),
            {"operation": "unlabeled", **raw_record, **lineage},
            rows=full.rows[1],
        )
    step("writing the clean table")
    clean_version = store.write(
        "clean",
        without_personal(full.clean, schema),
        {
            "operation": "clean",
            "mode": "full",
            **raw_record,
            "quarantine_version": str(quarantine.version),
            "unlabeled_version": "" if unlabeled is None else str(unlabeled.version),
            "rows_read": str(report.rows_read),
            "rejected": json.dumps(report.rejected),
            "missing": json.dumps(result.missing),
            "rows_valid": str(result.rows_valid),
            "null_counts": json.dumps(result.null_counts),
            "gate": "pass" if not reasons else "; ".join(reasons),
            **lineage,
        },
        rows=full.rows[0],
    )
    _audit(config, clean_version, report, reasons, mode="full")
    return PrepareResult(
        clean_version,
        report,
        unchanged=False,
        gate_reasons=reasons,
        notice=notice,
        warnings=schema_warnings(config),
    )


def _audit(
    config: SiteConfig,
    version: TableVersion,
    report: CleaningReport,
    reasons: list[str],
    *,
    mode: str,
) -> None:
    site_audit(config).append(
        "prepare",
        clean_version=version.version,
        mode=mode,
        rows_read=report.rows_read,
        rows_clean=report.rows_clean,
        rows_quarantined=sum(report.rejected.values()),
        gate="pass" if not reasons else "fail",
    )
