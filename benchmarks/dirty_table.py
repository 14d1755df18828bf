"""The benchmark's dirty site table: N rows x 20 columns and their site.toml.

An id, 15 float features with declared ranges, two int features, a category and a
0/1 label; ~2 % exact duplicate rows, ~3 % missing cells written as ``NA`` or ``?``,
~1 % feature cells far outside their range.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ID, LABEL, CATEGORY = "id", "label", "region"
FLOAT_FEATURES = [f"f{i:02d}" for i in range(1, 16)]
INT_FEATURES = {"age": (18, 90), "visits": (0, 50)}
REGIONS = ["north", "south", "east", "west"]
MISSING_MARKERS = ["", "NA", "?"]
DUPLICATES, MISSING, OUTLIERS = 0.02, 0.03, 0.01
CSV_NAME, TOML_NAME, STORE_NAME = "raw/data.csv", "site.toml", "store"
# The site's pseudonym key, kept beside the data: each fresh store gets it (both sides
# hash ids under the same key, so their results compare pseudonym for pseudonym).
KEY_NAME = "site.key"
ROW_ID = "_row_id"  # client.store.ROW_ID (the parent process imports no polars)


# Tables above this many rows are written in blocks of it (ids continue, duplicates
# stay within a block), so writing 20M rows needs no more memory than 5M.
BLOCK_ROWS = 5_000_000


def write_dataset(directory: Path, rows: int, seed: int, *, keep_raw_table: bool = True) -> dict:
    """Write ``raw/data.csv`` and ``site.toml`` under ``directory``; return what went in.

    ``keep_raw_table`` is the site's ``[site] keep_raw_table``: false keeps copies of the
    raw files instead of a text table of every raw row.
    """
    import numpy as np

    csv = directory / CSV_NAME
    csv.parent.mkdir(parents=True, exist_ok=True)
    totals = {"rows": 0, "duplicates": 0, "missing_cells": 0, "outlier_cells": 0}
    ranges = None
    with open(csv, "wb") as handle:
        for block, start in enumerate(range(0, rows, BLOCK_ROWS)):
            size = min(BLOCK_ROWS, rows - start)
            rng = np.random.default_rng(seed if block == 0 else [seed, block])
            first_id = 1 + start - round(DUPLICATES * start)
            full, counts, ranges = _block(rng, size, first_id, ranges)
            full.write_csv(handle, include_header=block == 0)
            for key in totals:
                totals[key] += counts[key]
            columns = full.width
            del full
    assert ranges is not None
    (directory / KEY_NAME).unlink(missing_ok=True)
    descriptor = os.open(directory / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as key:
        key.write(secrets.token_hex(32).encode("ascii"))  # as a new store makes it
    (directory / TOML_NAME).write_text(site_toml(ranges, keep_raw_table=keep_raw_table))
    return {**totals, "columns": columns, "raw_csv_mib": csv.stat().st_size / 2**20}


def _block(rng, rows: int, first_id: int, ranges: dict | None):
    """One block of the table (ids from ``first_id``) as text, its counts and the
    ranges (drawn here for the first block, ``ranges`` after)."""
    import numpy as np
    import polars as pl

    n_dup = round(DUPLICATES * rows)
    n_base = rows - n_dup
    typed: dict[str, object] = {ID: np.arange(first_id, first_id + n_base, dtype=np.int64)}
    drawn: dict[str, tuple[float, float]] = {}
    outliers = 0

    def outlying(lo: float, hi: float, n: int):
        span = hi - lo
        far = span * rng.uniform(5, 50, n)
        return np.where(rng.random(n) < 0.5, hi + far, lo - far)

    for name in FLOAT_FEATURES:
        lo = round(float(rng.uniform(-100, 50)), 1)
        hi = round(lo + float(rng.uniform(10, 500)), 1)
        lo, hi = ranges[name] if ranges else (lo, hi)
        drawn[name] = (lo, hi)
        values = np.clip(rng.normal((lo + hi) / 2, (hi - lo) / 6, n_base), lo, hi)
        out = rng.random(n_base) < OUTLIERS
        values[out] = outlying(lo, hi, int(out.sum()))
        outliers += int(out.sum())
        typed[name] = np.round(values, 4)
    for name, (lo, hi) in INT_FEATURES.items():
        drawn[name] = (float(lo), float(hi))
        values = rng.integers(lo, hi + 1, n_base).astype(np.int64)
        out = rng.random(n_base) < OUTLIERS
        values[out] = np.round(outlying(lo, hi, int(out.sum()))).astype(np.int64)
        outliers += int(out.sum())
        typed[name] = values
    typed[CATEGORY] = np.array(REGIONS)[rng.integers(0, len(REGIONS), n_base)]
    typed[LABEL] = (rng.random(n_base) < 0.4).astype(np.int64)

    frame = pl.DataFrame(typed)
    # Missing cells: every column but the id; half written 'NA', half '?'.
    masked = [c for c in frame.columns if c != ID]
    codes = {
        f"__m_{c}": np.where(rng.random(n_base) < MISSING, rng.integers(1, 3, n_base), 0).astype(
            np.int8
        )
        for c in masked
    }
    missing_cells = int(sum((m > 0).sum() for m in codes.values()))
    text = frame.with_columns(pl.DataFrame(codes)).select(
        pl.col(ID).cast(pl.String),
        *(
            pl.when(pl.col(f"__m_{c}") == 1)
            .then(pl.lit("NA"))
            .when(pl.col(f"__m_{c}") == 2)
            .then(pl.lit("?"))
            .otherwise(pl.col(c).cast(pl.String))
            .alias(c)
            for c in masked
        ),
    )
    # Exact duplicates of whole rows (id included), then shuffled in.
    copies = rng.choice(n_base, size=n_dup, replace=False)
    full = pl.concat([text, text[copies]])
    full = full[rng.permutation(full.height)]
    counts = {
        "rows": full.height,
        "duplicates": n_dup,
        "missing_cells": missing_cells,
        "outlier_cells": outliers,
    }
    return full, counts, ranges or drawn


def seed_site_key(directory: Path, store_dir: Path) -> None:
    """Give a fresh store the data's key (``KEY_NAME``) as its pseudonym key."""
    from client.privacy.pseudonyms import KEY_FILE
    from common.audit import load_or_create_key

    load_or_create_key(store_dir / KEY_FILE, content=(directory / KEY_NAME).read_bytes())


def site_toml(ranges: dict[str, tuple[float, float]], *, keep_raw_table: bool = True) -> str:
    markers = ", ".join(f'"{m}"' for m in MISSING_MARKERS)
    columns = [f'[schema.columns.{ID}]\ntype = "int"\nrole = "id"\n']
    columns += [
        f'[schema.columns.{n}]\ntype = "{"float" if n in FLOAT_FEATURES else "int"}"\n'
        f'role = "feature"\nmin = {lo!r}\nmax = {hi!r}\n'
        for n, (lo, hi) in ranges.items()
    ]
    regions = ", ".join(f'"{r}"' for r in REGIONS)
    columns.append(
        f'[schema.columns.{CATEGORY}]\ntype = "category"\nrole = "feature"\nvalues = [{regions}]\n'
    )
    columns.append(f'[schema.columns.{LABEL}]\ntype = "int"\nrole = "label"\nvalues = ["0", "1"]\n')
    body = "\n".join(columns)
    return f"""# fedlife prepare benchmark site (generated by benchmarks/bench_prepare.py)
[site]
name = "bench"
raw = "{CSV_NAME}"
store = "{STORE_NAME}"
{"" if keep_raw_table else "keep_raw_table = false"}

[schema]
missing = [{markers}]

{body}
[cleaning]
dedupe = true
impute = "median"
outliers = "clip"

[quality]
min_rows = 10
"""
