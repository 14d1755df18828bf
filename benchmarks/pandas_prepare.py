"""The pandas side of ``bench_prepare.py``: the same cleaning by hand, and the check
that its files hold the same rows as fedlife's tables (see bench_prepare's docstring
for what each side does; each step runs in a fresh process there)."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from child_steps import peak_mib
from dirty_table import (
    CATEGORY,
    CSV_NAME,
    FLOAT_FEATURES,
    ID,
    INT_FEATURES,
    KEY_NAME,
    LABEL,
    MISSING_MARKERS,
    REGIONS,
    ROW_ID,
    STORE_NAME,
    TOML_NAME,
)


def child_pandas(directory: Path, engine: str) -> dict:
    import pandas as pd

    from client.integrity import HashingFile  # fedlife's way of checksumming its files
    from common.config import load_site_config  # only to read the same ranges

    config = load_site_config(directory / TOML_NAME)
    schema = config.schema
    numeric = [*FLOAT_FEATURES, *INT_FEATURES]
    ranges = {n: (schema.columns[n].min, schema.columns[n].max) for n in numeric}
    out = directory / "pandas" / "clean.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    source = Path(CSV_NAME).name

    checksums: dict[str, str] = {}

    def to_parquet(table, path: Path) -> None:
        """``table`` written as fedlife's store writes a file: hashed as written, its
        sha256 recorded (``client.integrity``, the store's checksum manifest)."""
        with open(path, "wb") as handle:
            sink = HashingFile(handle)
            table.to_parquet(sink, index=False)
        checksums[path.name] = sink.digest.hexdigest()

    baseline = peak_mib()
    start = time.perf_counter()
    key = (directory / KEY_NAME).read_bytes()
    digest = hashlib.sha256()
    with open(directory / CSV_NAME, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    shutil.copyfile(directory / CSV_NAME, out.parent / f"{digest.hexdigest()}.csv")
    frame = pd.read_csv(
        directory / CSV_NAME, na_values=MISSING_MARKERS, keep_default_na=False, engine=engine
    )
    rows_read = len(frame)
    frame, quarantine = pandas_quarantine(frame, numeric, source)
    quarantine[ID] = pandas_pseudonyms(quarantine[ID], key)
    to_parquet(quarantine, out.parent / "quarantine.parquet")
    # Deduped and numbered on the typed ids, then pseudonymized: one to one, so the
    # same rows and row ids as prepare's (which pseudonymizes first), for less work.
    frame = frame.drop_duplicates()
    pseudonyms = pandas_pseudonyms(frame[ID], key)
    frame[ROW_ID] = pandas_row_ids(frame, pseudonyms, source)
    frame[ID] = pseudonyms
    unlabeled = frame[frame[LABEL].isna()]
    unlabeled = unlabeled.fillna(frame[numeric].median())
    for name, (lo, hi) in ranges.items():
        unlabeled[name] = unlabeled[name].clip(lo, hi)
    to_parquet(unlabeled, out.parent / "unlabeled.parquet")
    frame = frame.dropna(subset=[LABEL])
    frame = frame.fillna(frame[numeric].median())
    for name, (lo, hi) in ranges.items():
        frame[name] = frame[name].clip(lo, hi)
    to_parquet(frame, out)
    (out.parent / "checksums.json").write_text(json.dumps(checksums, sort_keys=True))
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "peak_rss_mib": peak_mib(),
        "baseline_rss_mib": baseline,
        "rows_read": rows_read,
        "rows": len(frame),
    }


def pandas_pseudonyms(ids, key: bytes):
    """The id column as prepare stores it: the HMAC-SHA256 of each id's text under the
    site's key, in hex; each distinct id hashed once, from a copy of one keyed HMAC
    (what prepare does under a key an earlier version made; pandas has no keyed hash,
    and polars-hash, which prepare uses under a text key, is a polars plugin)."""
    import numpy as np
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.hmac import HMAC

    codes, distinct = ids.factorize()
    keyed, hashed = HMAC(key, hashes.SHA256()), []
    for value in distinct:
        mac = keyed.copy()  # an int id read beside missing ones is a float: 17.0 is '17'
        integral = isinstance(value, float) and value.is_integer()
        mac.update((str(int(value)) if integral else str(value).strip()).encode())
        hashed.append(mac.finalize().hex())
    out = np.asarray([*hashed, None], dtype=object)[codes]  # code -1 (no id): None
    return out


def pandas_quarantine(frame, numeric: list[str], source: str):
    """``frame`` split into the rows prepare keeps and its quarantine: numbers that do
    not parse, a region or label outside the schema's values (the checks the bench's
    columns can fail; prepare's validation checks every column of any schema)."""
    import numpy as np
    import pandas as pd

    failed = []  # (rows failing, reason)
    for name in numeric:  # a column with text in it is read as text
        if not pd.api.types.is_numeric_dtype(frame[name]):
            typed = pd.to_numeric(frame[name], errors="coerce")
            kind = "float" if name in FLOAT_FEATURES else "int"  # prepare's words
            failed.append(((frame[name].notna() & typed.isna()).to_numpy(), f"{name}: not {kind}"))
            frame[name] = typed
    for name, allowed in ((CATEGORY, REGIONS), (LABEL, [0, 1])):
        outside = frame[name].notna() & ~frame[name].isin(allowed)
        failed.append((outside.to_numpy(), f"{name}: value not allowed"))
    bad = np.logical_or.reduce([rows for rows, _ in failed])
    if not bad.any():
        quarantine = frame.iloc[:0].assign(_source="", _line=0, _reason="")
        return frame, quarantine
    reasons = ["; ".join(reason for rows, reason in failed if rows[i]) for i in np.flatnonzero(bad)]
    quarantine = frame[bad].assign(_source=source, _line=frame.index[bad] + 2, _reason=reasons)
    return frame[~bad], quarantine


def pandas_row_ids(frame, pseudonyms, source: str):
    """Prepare's row ids: the id's pseudonym, ``#2``, ``#3``... on its repeats in read
    order (found on the typed ids), ``<file>:<line>`` where the id is missing
    (``client.pipeline.dedupe``)."""
    import pandas as pd

    row_ids = pd.Series(pseudonyms, index=frame.index, dtype=object)
    if frame[ID].duplicated().any():
        occurrence = frame.groupby(ID, sort=False, dropna=False).cumcount() + 1
        row_ids = row_ids.where(occurrence == 1, row_ids + "#" + occurrence.astype(str))
    missing = frame[ID].isna()
    if missing.any():  # the line in the file: the row's index (filters keep it) + header
        row_ids[missing] = source + ":" + (frame.index[missing] + 2).astype(str)
    return row_ids


def parity(directory: Path) -> dict:
    """Do fedlife's tables and pandas' parquet files hold the same rows: the clean
    table's sums of every number, its pseudonyms and row ids (an order-free fingerprint
    of each: the sum of the values' hashes), and the unlabeled and quarantined rows?
    And does each checksum pandas recorded match its file?"""
    import polars as pl

    from client.integrity import sha256_file

    # Scanned, not read: 20M rows of both would not fit the memory this bench measures.
    numeric = [*FLOAT_FEATURES, *INT_FEATURES]
    figures = [pl.len().alias("rows"), *(pl.col(c).cast(pl.Float64).sum() for c in numeric)]
    for name in (ID, ROW_ID):
        fingerprint = (pl.col(name).hash(seed=0) // (1 << 32)).sum()  # < 2^64 below 4G rows
        figures += [fingerprint.alias(f"{name}_hashes"), pl.col(name).null_count()]
    tables, theirs = directory / STORE_NAME / "tables", directory / "pandas"
    a = pl.scan_delta(str(tables / "clean")).select(figures).collect().row(0, named=True)
    b = pl.scan_parquet(theirs / "clean.parquet").select(figures).collect().row(0, named=True)
    off = [c for c in numeric if abs(a[c] - b[c]) > 1e-6 * max(1.0, abs(a[c]), abs(b[c]))]
    off += [c for c in a if c not in numeric and c != "rows" and a[c] != b[c]]
    for table in ("unlabeled", "quarantine"):
        ours = pl.scan_delta(str(tables / table)).select(pl.len()).collect().item()
        if ours != pl.scan_parquet(theirs / f"{table}.parquet").select(pl.len()).collect().item():
            off.append(f"{table} rows")
    recorded = json.loads((theirs / "checksums.json").read_text())
    for name, digest in recorded.items():  # pandas' files hashed as written, as ours
        if sha256_file(theirs / name) != digest:
            off.append(f"pandas checksum of {name}")
    return {"same_rows": a["rows"] == b["rows"], "columns_differing": off}
