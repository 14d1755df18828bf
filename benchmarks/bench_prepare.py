"""Benchmark a site's ``prepare`` (ingest -> clean -> Delta tables) against pandas.

    python benchmarks/bench_prepare.py --rows 1000000 --seed 0 [--repeat 3] [--phases]
    python benchmarks/bench_prepare.py --incremental --rows 5000000 --append 10000 --repeat 3

The script writes a dirty CSV (an id, 15 float features with declared ranges, two
int features, a category, a 0/1 label; ~2 % exact duplicate rows, ~3 % missing
cells written as ``NA`` or ``?``, ~1 % feature cells far outside their range) and
its ``site.toml`` into a temporary directory. It then times, in turn:

* fedlife: ``client.pipeline.prepare.prepare(load_site_config(path))``, wall clock, on a
  fresh store each run;
* pandas: the same work by hand: ``read_csv`` with the same missing markers; the id
  column pseudonymized as prepare stores it (HMAC-SHA256 of the id's text under the
  same site key, hex; each distinct id once); the rows prepare's validation would
  quarantine here (a number that does not parse, a region or label outside the
  schema's values) written to a quarantine parquet with file, line and reason;
  ``drop_duplicates``; row ids as prepare makes them (the pseudonym, ``#n`` on a
  repeated id, ``file:line`` without an id); unlabeled rows set aside; ``fillna``
  with per-column medians; ``clip`` to the declared ranges; ``to_parquet``. It also
  does the record keeping fedlife does and pandas would need as well: the sha256 of
  the raw file and a copy of it named by that digest (the lineage); the unlabeled
  rows, cleaned with all rows' medians, written beside the clean ones; and the sha256
  of every file it writes, hashed as written and kept in ``checksums.json``, as the
  store records each data file's (``client.integrity``). The bench's schema has no
  ``pii`` column (prepare would drop it; nothing to drop on either side).

Both sides hash ids under the key the data directory holds (``site.key``, given to each
fresh store), so ``results_match_pandas`` compares pseudonyms and row ids too.

Peak memory: every measured step runs in its own fresh Python process
(``subprocess.Popen``; the parent imports neither polars nor numpy, and data
generation and the result check run in children too). The child reads its own
high-water resident set, ``VmHWM`` in ``/proc/self/status``, just before the timed
call (``baseline_rss_mib``: interpreter and imports) and just after it
(``peak_rss_mib``, the step's peak, all threads included). ``VmHWM`` belongs to the
address space the child got at ``exec``, so it is that step's alone. ``ru_maxrss``
is not: ``RUSAGE_CHILDREN`` is the maximum over every child reaped so far, and on
Linux even one child's ``ru_maxrss`` (from ``os.wait4``) keeps the high-water mark
of the address space it had before ``exec`` -- the parent's, shared under
``vfork``/``fork`` -- so a parent holding the generated data would inflate it (seen:
a 72 MiB child reported as 171 MiB). The parent stays small, and still records each
child's ``wait4`` figure as a cross-check (``rusage_maxrss_mib`` in the JSON).

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from child_steps import peak_mib
from child_steps import run_child as run_child_of
from dirty_table import (
    STORE_NAME,
    TOML_NAME,
    seed_site_key,
    write_dataset,
)
from pandas_prepare import child_pandas, parity
from prepare_phases import child_phases, child_steps

# ------------------------------------------------------------------ child steps


def child_fedlife(directory: Path, route: str = "auto") -> dict:
    import client
    from client.pipeline.prepare import prepare
    from common.config import load_site_config

    seed_site_key(directory, load_site_config(directory / TOML_NAME).store_dir)
    baseline = peak_mib()
    start = time.perf_counter()
    chosen = {"auto": None, "out-of-core": True, "in-memory": False}[route]
    result = prepare(load_site_config(directory / TOML_NAME), out_of_core=chosen)
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "peak_rss_mib": peak_mib(),
        "baseline_rss_mib": baseline,
        "rows_read": result.report.rows_read,
        "rows": result.report.rows_clean,
        "unchanged": result.unchanged,
        "fedlife_source": str(Path(client.__file__).parent.parent),
        "gate_passed": result.gate_passed,
    }


# ----------------------------------------------------------------------- parent


def run_child(step: str, directory: Path, *options: str) -> dict:
    """Run one step of this script in a fresh interpreter (see ``child_steps.run_child``)."""
    return run_child_of(__file__, step, directory, *options)


def child_generate(directory: Path, rows: int, seed: int, *, keep_raw_table: bool) -> dict:
    return write_dataset(directory, rows, seed, keep_raw_table=keep_raw_table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step (median kept)")
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also time prepare's phases (--route in-memory: its stages called one by one; "
        "otherwise prepare's own steps, as it reports them)",
    )
    parser.add_argument("--pandas-engine", default="c", choices=["c", "pyarrow", "python"])
    parser.add_argument(
        "--keep-raw-table",
        action="store_true",
        help="the site keeps the raw text table ([site] keep_raw_table = true, the default "
        "of a site); without it the site keeps content-addressed copies of its raw files",
    )
    parser.add_argument("--keep", type=Path, default=None, help="write data here, keep it")
    parser.add_argument(
        "--no-pandas",
        action="store_true",
        help="time fedlife alone (pandas needs about 0.7 GiB per million rows: 14 GiB at 20M)",
    )
    parser.add_argument(
        "--route",
        default="auto",
        choices=["auto", "out-of-core", "in-memory"],
        help="prepare's route: by the raw files' size (auto), or the one named",
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="time a prepare after appending --append rows beside a full prepare "
        "(benchmarks/bench_incremental.py)",
    )
    parser.add_argument("--append", type=int, default=10_000, help="rows --incremental appends")
    parser.add_argument(
        "--child",
        choices=["generate", "fedlife", "pandas", "phases", "parity"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.incremental and not args.child:
        from bench_incremental import main as incremental

        options = ["--rows", str(args.rows), "--append", str(args.append)]
        options += ["--seed", str(args.seed), "--repeat", str(args.repeat)]
        incremental([*options, *(["--keep", str(args.keep)] if args.keep else [])])
        return
    if args.child:
        step = {
            "fedlife": lambda: child_fedlife(args.dir, args.route),
            "pandas": lambda: child_pandas(args.dir, args.pandas_engine),
            "phases": lambda: (
                child_phases(args.dir)
                if args.route == "in-memory"
                else child_steps(args.dir, args.route)
            ),
            "generate": lambda: child_generate(
                args.dir, args.rows, args.seed, keep_raw_table=args.keep_raw_table
            ),
            "parity": lambda: parity(args.dir),
        }[args.child]
        print(json.dumps(step()))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or logged: keep the table on one line a row
        console.width = 120
    scratch = None
    if args.keep is None:
        scratch = tempfile.TemporaryDirectory(prefix="fedlife-bench-")
        directory = Path(scratch.name)
    else:
        directory = args.keep
        directory.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        generate = ["--rows", str(args.rows), "--seed", str(args.seed)]
        generate += ["--keep-raw-table"] if args.keep_raw_table else []
        data = run_child("generate", directory, *generate)
        console.print(
            f"[dim]data: {data['rows']:,} rows x {data['columns']} columns, "
            f"{data['raw_csv_mib']:.0f} MiB CSV, {data['duplicates']:,} duplicate rows, "
            f"{data['missing_cells']:,} missing cells, {data['outlier_cells']:,} outlier "
            f"cells; written in {time.perf_counter() - start:.1f} s to {directory}[/dim]"
        )
        runs: dict[str, list[dict]] = {"fedlife": [], "pandas": []}
        if args.no_pandas:
            del runs["pandas"]
        for _ in range(args.repeat):
            for step in runs:
                if step == "fedlife":  # a fresh store: prepare must do the work
                    shutil.rmtree(directory / STORE_NAME, ignore_errors=True)
                options = ["--pandas-engine", args.pandas_engine, "--route", args.route]
                runs[step].append(run_child(step, directory, *options))
        check = None if args.no_pandas else run_child("parity", directory)
        phases = None
        if args.phases:
            shutil.rmtree(directory / STORE_NAME, ignore_errors=True)
            phases = run_child("phases", directory, "--route", args.route)
    finally:
        if scratch is not None:
            scratch.cleanup()

    table = Table(title=f"prepare benchmark: {args.rows:,} rows, {os.cpu_count()} CPUs")
    columns = (
        "step",
        "wall_s",
        "rows_per_s",
        "process_cpu_s",
        "peak_rss_mib",
        "baseline_rss_mib",
        "rows",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    labels = {"fedlife": "fedlife prepare", "pandas": f"pandas ({args.pandas_engine} engine)"}
    for step, results in runs.items():
        for i, r in enumerate(results, 1):
            table.add_row(
                f"{labels[step]} #{i}",
                f"{r['wall_s']:.2f}",
                f"{r['rows_read'] / r['wall_s']:,.0f}",
                f"{r['cpu_s']:.2f}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['baseline_rss_mib']:.0f}",
                f"{r['rows']:,}",
            )
    console.print(table)
    if phases:
        breakdown = Table(title="fedlife prepare, phase by phase (one run)")
        for column in ("phase", "wall_s", "share", "peak_rss_mib so far"):
            breakdown.add_column(column, justify="left" if column == "phase" else "right")
        total = sum(p["wall_s"] for p in phases["phases"])
        for p in phases["phases"]:
            breakdown.add_row(
                p["phase"],
                f"{p['wall_s']:.2f}",
                f"{p['wall_s'] / total:.0%}",
                f"{p['peak_rss_mib']:.0f}",
            )
        breakdown.add_row("total", f"{total:.2f}", "100%", "")
        console.print(breakdown)
    for r in runs["fedlife"]:
        if r["unchanged"]:
            console.print(
                "[yellow]a fedlife run found its store unchanged: not timed work[/yellow]"
            )
    if check is not None and (not check["same_rows"] or check["columns_differing"]):
        console.print(f"[yellow]fedlife and pandas results differ: {check}[/yellow]")

    wall = statistics.median(r["wall_s"] for r in runs["fedlife"])
    pandas = runs.get("pandas") or [{"wall_s": math.nan, "peak_rss_mib": math.nan}]
    pandas_wall = statistics.median(r["wall_s"] for r in pandas)
    summary = {
        "rows": data["rows"],
        "rows_clean": runs["fedlife"][0]["rows"],
        "keep_raw_table": args.keep_raw_table,
        "route": args.route,
        "rows_per_s": round(data["rows"] / wall, 1),
        "wall_s": round(wall, 3),
        "wall_s_min": round(min(r["wall_s"] for r in runs["fedlife"]), 3),
        "wall_s_runs": [round(r["wall_s"], 3) for r in runs["fedlife"]],
        "pandas_wall_s": round(pandas_wall, 3),
        "pandas_wall_s_min": round(min(r["wall_s"] for r in pandas), 3),
        "pandas_wall_s_runs": [round(r["wall_s"], 3) for r in pandas],
        "speedup_vs_pandas": round(pandas_wall / wall, 3),
        "process_cpu_s": round(statistics.median(r["cpu_s"] for r in runs["fedlife"]), 3),
        "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs["fedlife"]), 1),
        "baseline_rss_mib": round(max(r["baseline_rss_mib"] for r in runs["fedlife"]), 1),
        "rusage_maxrss_mib": round(max(r["rusage_maxrss_mib"] for r in runs["fedlife"]), 1),
        "pandas_peak_rss_mib": round(max(r["peak_rss_mib"] for r in pandas), 1),
        "pandas_engine": args.pandas_engine,
        "raw_csv_mib": round(data["raw_csv_mib"], 1),
        "results_match_pandas": None
        if check is None
        else check["same_rows"] and not check["columns_differing"],
        "cpu_count": os.cpu_count(),
        "seed": args.seed,
        "python": platform.python_version(),
        "fedlife_source": runs["fedlife"][0]["fedlife_source"],
    }
    if args.no_pandas:  # null, not NaN (which JSON lacks)
        summary.update(
            {k: None for k, v in summary.items() if k.startswith(("pandas_", "speedup"))}
        )
        summary["pandas_wall_s_runs"] = []
    if phases:
        summary["phases_s"] = {p["phase"]: round(p["wall_s"], 3) for p in phases["phases"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
