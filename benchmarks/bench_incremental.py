"""Benchmark incremental ``prepare``: rows appended to a large site against a full prepare.

    python benchmarks/bench_prepare.py --incremental --rows 5000000 --append 10000

(or this script directly, with the same options). It writes the dirty site table of
``dirty_table.py`` (``--rows`` rows, one CSV, ``keep_raw_table = false``) with
row-independent cleaning (``impute = "center"``, ``outliers = "clip"``: what the privacy
model asks; median imputation would make every prepare a full rebuild) and then, each
step in its own fresh process (peak RSS is that process's ``VmHWM``):

1. a full ``prepare`` of the site (clean version 0);
2. appends ``--append`` new rows (fresh ids, the table's own share of duplicates,
   missing cells and outliers) to the CSV;
3. ``prepare`` again: incremental, it reads only the appended bytes (timed; with
   ``--repeat`` the store is restored from a copy before each run);
4. a full ``prepare`` of the grown CSV into a fresh store (timed): the cost without
   incremental prepare;
5. checks that both clean tables hold the same rows (as sets, by row id).

A readable table, then, on the last line, one JSON object with the figures
(``ratio``: the full prepare's wall time over the incremental one's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from child_steps import peak_mib
from child_steps import run_child as run_child_of
from dirty_table import CSV_NAME, STORE_NAME, TOML_NAME, write_dataset

TARGET_RATIO = 20.0


def child_generate(directory: Path, rows: int, seed: int) -> dict:
    data = write_dataset(directory, rows, seed, keep_raw_table=False)
    toml = directory / TOML_NAME
    text = toml.read_text().replace('impute = "median"', 'impute = "center"')
    toml.write_text(text)
    return data


def child_append(directory: Path, rows: int, seed: int, id_offset: int) -> dict:
    """Append ``rows`` new rows (ids after ``id_offset``) to the site's CSV."""
    import polars as pl

    with tempfile.TemporaryDirectory() as scratch:
        write_dataset(Path(scratch), rows, seed)
        new = pl.read_csv(Path(scratch) / CSV_NAME, infer_schema=False)
    new = new.with_columns((pl.col("id").cast(pl.Int64) + id_offset).cast(pl.String))
    text = new.write_csv(include_header=False)
    with open(directory / CSV_NAME, "a", encoding="utf-8") as handle:
        handle.write(text)
    return {"rows": new.height, "bytes": len(text.encode())}


def child_prepare(directory: Path) -> dict:
    from client.pipeline.prepare import prepare
    from common.config import load_site_config

    config = load_site_config(directory / TOML_NAME)
    baseline = peak_mib()
    start = time.perf_counter()
    result = prepare(config)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "peak_rss_mib": peak_mib(),
        "baseline_rss_mib": baseline,
        "incremental": result.incremental,
        "notice": result.notice,
        "rows_read": result.report.rows_read,
        "rows": int(result.clean.lineage.get("rows", 0)),
        "version": result.clean.version,
    }


def child_parity(directory: Path) -> dict:
    """Do the incremental and the full store's clean tables hold the same rows?"""
    import polars as pl

    def rows(store: str) -> pl.DataFrame:
        return pl.read_delta(str(directory / store / "tables" / "clean")).sort("_row_id")

    ours, theirs = rows(STORE_NAME + "-incremental"), rows(STORE_NAME)
    same = ours.height == theirs.height and ours.select(theirs.columns).equals(theirs)
    return {"same_rows": same, "rows": ours.height, "full_rows": theirs.height}


def run_child(step: str, directory: Path, *options: str) -> dict:
    """Run one step of this script in a fresh interpreter (see ``child_steps.run_child``)."""
    return run_child_of(__file__, step, directory, *options)


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--rows", type=int, default=5_000_000, help="rows of the site")
    options.add_argument("--append", type=int, default=10_000, help="rows appended")
    options.add_argument("--seed", type=int, default=0)
    options.add_argument("--repeat", type=int, default=1, help="incremental runs (median)")
    options.add_argument("--keep", type=Path, default=None, help="write data here, keep it")
    options.add_argument("--child", choices=["generate", "append", "prepare", "parity"])
    options.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    options.add_argument("--id-offset", type=int, default=0, help=argparse.SUPPRESS)
    return options


def main(argv: list[str] | None = None) -> None:
    args, _ = parser().parse_known_args(argv)
    if args.child:
        step = {
            "generate": lambda: child_generate(args.dir, args.rows, args.seed),
            "append": lambda: child_append(args.dir, args.append, args.seed + 1, args.id_offset),
            "prepare": lambda: child_prepare(args.dir),
            "parity": lambda: child_parity(args.dir),
        }[args.child]
        print(json.dumps(step()))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 120
    scratch = None
    if args.keep is None:
        scratch = tempfile.TemporaryDirectory(prefix="fedlife-bench-inc-")
        directory = Path(scratch.name)
    else:
        directory = args.keep
        directory.mkdir(parents=True, exist_ok=True)
    store, snapshot = directory / STORE_NAME, directory / (STORE_NAME + "-before")
    try:
        started = time.perf_counter()
        data = run_child("generate", directory, "--rows", str(args.rows), "--seed", str(args.seed))
        console.print(
            f"[dim]data: {data['rows']:,} rows, {data['raw_csv_mib']:.0f} MiB CSV, written in "
            f"{time.perf_counter() - started:.1f} s to {directory}[/dim]"
        )
        shutil.rmtree(store, ignore_errors=True)
        base = run_child("prepare", directory)
        appended = run_child(
            "append", directory, "--append", str(args.append), "--seed", str(args.seed),
            "--id-offset", str(args.rows),
        )  # fmt: skip
        shutil.copytree(store, snapshot)
        runs = []
        for _ in range(args.repeat):
            shutil.rmtree(store)
            shutil.copytree(snapshot, store)
            runs.append(run_child("prepare", directory))
        store.rename(directory / (STORE_NAME + "-incremental"))
        # The fresh store gets the same site key: its ids are the same pseudonyms.
        (store / "audit").mkdir(parents=True)
        key = directory / (STORE_NAME + "-incremental") / "audit" / "hmac.key"
        shutil.copy2(key, store / "audit" / "hmac.key")
        full = run_child("prepare", directory)
        check = run_child("parity", directory)
    finally:
        if scratch is not None:
            scratch.cleanup()

    table = Table(title=f"incremental prepare: {args.append:,} rows appended to {args.rows:,}")
    for column in ("step", "wall_s", "rows_read", "peak_rss_mib", "clean rows", "mode"):
        table.add_column(column, justify="left" if column in ("step", "mode") else "right")

    def row(label: str, r: dict) -> None:
        mode = "incremental" if r["incremental"] else "full"
        table.add_row(
            label,
            f"{r['wall_s']:.2f}",
            f"{r['rows_read']:,}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['rows']:,}",
            mode,
        )

    row("full prepare of the site (before appending)", base)
    for i, r in enumerate(runs, 1):
        row(f"prepare after appending #{i}", r)
    row("full prepare of the grown site (fresh store)", full)
    console.print(table)
    for r in runs:
        if not r["incremental"]:
            console.print(f"[yellow]the prepare after appending was not incremental: {r['notice']}")
    wall = statistics.median(r["wall_s"] for r in runs)
    ratio = full["wall_s"] / wall
    console.print(
        f"incremental {wall:.2f} s vs full {full['wall_s']:.2f} s: {ratio:.1f}x less "
        f"(target >= {TARGET_RATIO:.0f}x); same rows as the full prepare: {check['same_rows']}"
    )
    summary = {
        "rows": data["rows"],
        "appended_rows": appended["rows"],
        "appended_mib": round(appended["bytes"] / 2**20, 2),
        "raw_csv_mib": round(data["raw_csv_mib"], 1),
        "incremental_wall_s": round(wall, 3),
        "incremental_wall_s_runs": [round(r["wall_s"], 3) for r in runs],
        "incremental_peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
        "full_wall_s": round(full["wall_s"], 3),
        "full_peak_rss_mib": round(full["peak_rss_mib"], 1),
        "base_full_wall_s": round(base["wall_s"], 3),
        "ratio": round(ratio, 1),
        "target_ratio": TARGET_RATIO,
        "incremental": all(r["incremental"] for r in runs),
        "same_rows_as_full": check["same_rows"],
        "rows_clean": check["rows"],
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "python": platform.python_version(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
