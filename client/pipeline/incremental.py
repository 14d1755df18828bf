"""Incremental prepare: read only the raw bytes added since the last clean version.

Every clean version that ``prepare`` commits records each raw file's size, sha256 and
rows read. On the next ``prepare`` a file whose first (recorded size) bytes still hash
to the recorded sha256, ending on a line break, has only grown: its tail and every new
file are all that is read, validated and cleaned, and their rows are added as one new
Delta version of each table. A file that shrank, changed or vanished rebuilds in
full, with a one-line notice saying why.

Dedupe and row ids depend only on rows that share an id (or, without an id column,
the dedupe key): the old raw rows of the ids the new rows repeat are read again and
deduped with them, exactly as a full prepare would, and replace their old rows in
the same commit (a Delta MERGE). Cleaning that makes a row depend on the others
(median, mean or mode imputation, winsorizing, interpolation) would change old rows
too: such sites always rebuild in full.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from client.pipeline.clean import CleaningReport, _identified, clean_with_unlabeled
from client.pipeline.ingest import LINE, SOURCE, raw_files
from client.pipeline.pipeline import (
    PipelineResult,
    null_counts,
    numeric_features,
    read_validated,
    rows_by_file,
)
from client.pipeline.validate import Validated
from client.retention.erasure import PENDING, ErasureRequests
from client.retention.retain import expired_rows, expiry_cutoff
from client.store import CLEAN, QUARANTINE, RAW, ROW_ID, UNLABELED, SiteStore, TableVersion
from common.config import ColumnType, Role, SiteConfig, row_dependent_cleaning

# Lineage keys of the record an incremental prepare starts from.
SIZES, FILE_ROWS, RUN = "input_sizes", "input_rows", "prepare_run"
CLASSES = "label_classes"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class Scanned:
    """The raw files as they are now.

    Parameters
    ----------
    digests : each file's sha256.
    sizes : each file's size in bytes.
    prefixes : for each file with a recorded size it still reaches, the sha256 of
        that many first bytes, and whether they end on a line break.
    """

    digests: dict[str, str]
    sizes: dict[str, int]
    prefixes: dict[str, tuple[str, bool]]


def scan(files: list[Path], known_sizes: dict[str, int]) -> Scanned:
    """Hash every file once, taking the digest of its known prefix on the way.

    Read into one reused buffer and hashed without copies; ``update`` on large
    buffers releases the GIL, so the hashing can overlap other work.
    """
    digests, sizes, prefixes = {}, {}, {}
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    for path in files:
        name, digest = str(path), hashlib.sha256()
        known, done, last = known_sizes.get(name), 0, b""
        with open(path, "rb", buffering=0) as handle:
            while True:
                if known is not None and done == known:
                    prefixes[name] = (digest.copy().hexdigest(), known == 0 or last == b"\n")
                wanted = _CHUNK if known is None or done >= known else min(_CHUNK, known - done)
                read = handle.readinto(view[:wanted])
                if not read:
                    break
                digest.update(view[:read])
                done, last = done + read, bytes(view[read - 1 : read])
        sizes[name], digests[name] = done, digest.hexdigest()
    return Scanned(digests, sizes, prefixes)


def presumed(files: list[Path], lineage: dict[str, str]) -> Scanned:
    """What ``scan`` finds if every file the lineage records has only grown (no reads)."""
    recorded = json.loads(lineage.get("inputs", "{}"))
    sizes = {str(p): p.stat().st_size for p in files}
    present = {name: digest for name, digest in recorded.items() if name in sizes}
    return Scanned(present, sizes, {name: (digest, True) for name, digest in present.items()})


@dataclass(frozen=True)
class Piece:
    """Bytes ``start``..``end`` of ``path``, after ``rows_before`` rows read earlier."""

    path: Path
    start: int
    end: int
    rows_before: int


@dataclass(frozen=True)
class Plan:
    """What the next ``prepare`` reads: the new pieces, or everything (with why)."""

    full: bool
    notice: str = ""
    pieces: tuple[Piece, ...] = ()


def plan(config: SiteConfig, store: SiteStore, latest: TableVersion | None, now: Scanned) -> Plan:
    """Whether only new pieces need reading, given the latest clean version's record."""
    if latest is None:
        return Plan(full=True)
    lineage, version = latest.lineage, latest.version

    def rebuild(why: str) -> Plan:
        return Plan(full=True, notice=f"{why} since clean version {version}: full rebuild")

    if SIZES not in lineage:
        return Plan(
            full=True, notice=f"clean version {version} records no input sizes: full rebuild"
        )
    dependent = row_dependent_cleaning(config.cleaning)
    if dependent or config.cleaning.impute == "interpolate":
        settings = ", ".join(dependent) or "cleaning.impute = 'interpolate'"
        return Plan(full=True, notice=f"{settings} makes rows depend on all rows: full rebuild")
    requests = ErasureRequests(config.store_dir).all()
    if any(r.status == PENDING for r in requests[int(lineage.get("erasure_requests", 0)) :]):
        return rebuild("erasure requested")
    tables = [QUARANTINE, UNLABELED] + ([RAW] if config.site.keep_raw_table else [])
    for table in tables:
        written = store.latest(table)
        if (written is None and table != UNLABELED) or (
            written is not None and written.lineage.get(RUN) != lineage.get(RUN)
        ):
            return rebuild(f"table '{table}' changed (an interrupted prepare?)")
    sizes, digests = json.loads(lineage[SIZES]), json.loads(lineage["inputs"])
    rows = json.loads(lineage.get(FILE_ROWS, "{}"))
    for name in digests:
        if name not in now.digests:
            return rebuild(f"raw file {name} was deleted")
        prefix = now.prefixes.get(name)
        grew = now.sizes[name] > sizes[name]
        parquet = Path(name).suffix.lower() == ".parquet"
        if prefix is None or prefix[0] != digests[name] or (grew and (parquet or not prefix[1])):
            return rebuild(f"raw file {name} changed")
    if len({Path(n).name for n in now.digests}) < len(now.digests):
        return Plan(full=True, notice="two raw files share a name: full rebuild")
    pieces = [
        Piece(Path(name), sizes.get(name, 0), size, int(rows.get(name, 0)))
        for name, size in now.sizes.items()
        if size > sizes.get(name, 0) or name not in digests
    ]
    return Plan(full=False, pieces=tuple(pieces))


@dataclass(frozen=True)
class Increment:
    """The rows a plan adds, cleaned, and the old rows they replace.

    Parameters
    ----------
    result : the added rows as a pipeline result (counts are of the new rows only).
    replacing : row ids of old rows to take out (re-deduped with the new ones, or
        now past the retention age); a row of ``result`` with one of them replaces it.
    added : per piece: path, byte range and rows read.
    """

    result: PipelineResult
    replacing: list[str]
    added: list[dict[str, object]]


def read_increment(
    config: SiteConfig, store: SiteStore, pieces: tuple[Piece, ...], work: Path
) -> Increment:
    """Read, validate and clean the pieces, with the old rows that share their ids.

    ``work`` is a scratch folder for the tails of grown files (each written beside its
    header under the file's own name, so rows keep their file and line).
    """
    files, offsets, added = [], {}, []
    for piece in pieces:
        if piece.start == 0:
            files.append(piece.path)
        elif _tail_rows(piece):
            files.append(_tail_file(config, piece, work))
            offsets[piece.path.name] = piece.rows_before
    if files:
        raw, validated, rows_read = read_validated(config, files)
        raw, validated = _shifted(raw, offsets), _shifted_validated(validated, offsets)
    else:
        raw, validated, rows_read = _nothing(config)
    counts = rows_by_file(validated)
    for piece in pieces:
        rows = int(counts.get(piece.path.name, 0))
        added.append(
            {"path": str(piece.path), "from_byte": piece.start, "to_byte": piece.end, "rows": rows}
        )
    new = validated.valid
    old = _old_rows(config, store, new)
    replacing = [] if old.height == 0 else _row_ids(old, config)
    order = {path.name: rank for rank, path in enumerate(raw_files(config))}
    combined = pl.concat([old, new]).sort(
        pl.col(SOURCE).replace_strict(order, default=len(order)), LINE, maintain_order=True
    )
    features = numeric_features(config.schema)
    if combined.height:
        cleaned, report, unlabeled = clean_with_unlabeled(combined, config)
    else:  # only blank lines were added
        cleaned, unlabeled = _empty(store, CLEAN), _empty(store, UNLABELED)
        report = CleaningReport()
    if old.height:
        report.duplicates_dropped -= old.height - _deduped_height(old, config)
    report.rows_read, report.rejected = rows_read, validated.rejected
    result = PipelineResult(
        raw,
        validated,
        cleaned,
        unlabeled,
        report,
        {},
        counts,
        new.height,
        null_counts(new, features),
    )
    replacing += _expired_ids(config, store)
    return Increment(result, sorted(set(replacing)), added)


def label_classes(clean: pl.DataFrame, config: SiteConfig) -> list[str]:
    """The label values among ``clean``'s rows, as text, sorted."""
    values = clean.get_column(config.schema.label).drop_nulls().unique().cast(pl.String)
    return sorted(values.to_list())


def merged_counts(old: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    return {k: int(old.get(k, 0)) + int(new.get(k, 0)) for k in sorted({*old, *new})}


def _tail_rows(piece: Piece) -> bool:
    """Whether the tail holds anything but blank lines (a blank tail adds no row)."""
    with open(piece.path, "rb") as handle:
        handle.seek(piece.start)
        return bool(handle.read(piece.end - piece.start).strip())


def _tail_file(config: SiteConfig, piece: Piece, work: Path) -> Path:
    """The piece's bytes under the file's name in ``work``, after the file's header."""
    with open(piece.path, "rb") as handle:
        header = handle.readline() if _has_header(config, piece.path) else b""
        handle.seek(piece.start)
        tail = handle.read(piece.end - piece.start)
    copy = work / piece.path.name
    copy.write_bytes(header + tail)
    return copy


def _has_header(config: SiteConfig, path: Path) -> bool:
    return config.schema.header and path.suffix.lower() not in (".jsonl", ".ndjson", ".parquet")


def _shifted(frame: pl.DataFrame, offsets: dict[str, int]) -> pl.DataFrame:
    """Lines of tails counted from the start of their file."""
    if not offsets or frame.height == 0:
        return frame
    offset = pl.col(SOURCE).replace_strict(offsets, default=0, return_dtype=pl.Int64)
    return frame.with_columns(pl.col(LINE) + offset)


def _shifted_validated(validated: Validated, offsets: dict[str, int]) -> Validated:
    return Validated(
        _shifted(validated.valid, offsets),
        _shifted(validated.quarantine, offsets),
        validated.rejected,
    )


def _nothing(config: SiteConfig) -> tuple[pl.DataFrame, Validated, int]:
    """No rows: what reading pieces of blank lines gives."""
    text = {c: pl.String for c in config.schema.columns}
    raw = pl.DataFrame(schema={**text, SOURCE: pl.String, LINE: pl.Int64})
    return raw, Validated(raw.head(0), raw.head(0), {}), 0


def _empty(store: SiteStore, table: str) -> pl.DataFrame:
    """No rows, with ``table``'s columns (none where it does not exist)."""
    if store.latest(table) is None:
        return pl.DataFrame()
    return pl.DataFrame(schema=pl.scan_delta(str(store.table_path(table))).collect_schema())


def _group_filter(config: SiteConfig, store: SiteStore, new: pl.DataFrame) -> pl.Expr | None:
    """Which old raw rows must be deduped again with ``new`` (None: none).

    Dedupe and row ids depend only on rows with the same id (or dedupe key) and on
    the rows missing it: with an id column, the ids the new rows share with the old
    tables; without one, every old row with a new row's key.
    """
    schema, dedupe = config.schema, config.cleaning.dedupe
    id_column = schema.first_with(Role.ID)
    if new.height == 0:
        return None
    if id_column is not None:
        column = new.get_column(id_column)
        ids = column.drop_nulls().unique()
        shared, old_nulls = [], False
        for table in (CLEAN, UNLABELED):
            if store.latest(table) is None:
                continue
            # Ids that only grow (exports, sensors) are ruled out by the log's statistics.
            may_hold, may_be_null = store.could_hold(table, id_column, ids)
            old = pl.scan_delta(str(store.table_path(table))).select(id_column)
            if may_hold:
                found = old.filter(pl.col(id_column).is_in(ids.implode())).unique().collect()
                shared += found.get_column(id_column).to_list()
            if dedupe is not False and column.null_count() and may_be_null:
                nulls = old.select(pl.col(id_column).null_count()).collect().item()
                old_nulls = old_nulls or nulls > 0
        if not shared and not old_nulls:
            return None
        matches = pl.col(id_column).is_in(pl.Series(shared, dtype=column.dtype).implode())
        return matches | pl.col(id_column).is_null() if old_nulls else matches
    if dedupe is False:
        return None
    ints = [n for n, s in schema.columns.items() if s.type is ColumnType.INT]
    if not ints:
        return pl.lit(True)  # whole rows are compared: every old row
    key = new.get_column(ints[0])
    matches = pl.col(ints[0]).is_in(key.drop_nulls().unique().implode())
    return matches | pl.col(ints[0]).is_null() if key.null_count() else matches


def _old_rows(config: SiteConfig, store: SiteStore, new: pl.DataFrame) -> pl.DataFrame:
    """The old files' valid rows in the new rows' dedupe groups, as a full read gives them."""
    latest = store.latest(CLEAN)
    groups = _group_filter(config, store, new)
    if groups is None or latest is None:
        return new.head(0)
    old_rows = json.loads(latest.lineage.get(FILE_ROWS, "{}"))
    old_files = [p for p in raw_files(config) if str(p) in old_rows]
    _, validated, _ = read_validated(config, old_files, text=False)
    first = 2 if config.schema.header else 1
    # Only the lines the last version read: a grown file's tail is among the new rows.
    last = {Path(name).name: first + int(rows) for name, rows in old_rows.items()}
    limit = pl.col(SOURCE).replace_strict(last, default=first, return_dtype=pl.Int64)
    return validated.valid.filter((pl.col(LINE) < limit) & groups)


def _row_ids(rows: pl.DataFrame, config: SiteConfig) -> list[str]:
    """The row ids a full prepare gave ``rows`` (whole dedupe groups)."""
    identified = _identified(rows, config, CleaningReport())
    return identified.get_column(ROW_ID).to_list()


def _deduped_height(rows: pl.DataFrame, config: SiteConfig) -> int:
    return _identified(rows, config, CleaningReport()).height


def _expired_ids(config: SiteConfig, store: SiteStore) -> list[str]:
    """Row ids of the old tables' rows now past the retention age."""
    timestamp = config.schema.first_with(Role.TIMESTAMP)
    if expiry_cutoff(config) is None:
        return []
    ids = []
    for table in (CLEAN, UNLABELED):
        if (latest := store.latest(table)) is not None:
            rows = store.read_columns(table, [ROW_ID, timestamp], latest.version)
            ids += rows.filter(expired_rows(config, rows)).get_column(ROW_ID).to_list()
    return ids
