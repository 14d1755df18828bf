"""Benchmark ``fedlife-site backup`` / ``verify`` / ``restore`` on a large store.

    python benchmarks/bench_backup.py --rows 1000000

Builds the dirty site table of ``dirty_table.py`` (``--rows`` rows, row-independent
cleaning as in ``bench_incremental.py``) and prepares it (not timed), then times:

1. a first backup of the store (every file sealed);
2. after ``--change`` of the rows are appended and prepared again (incremental: new
   data files beside the old ones), a second backup: only the new files are copied;
3. ``verify``: every table's latest data files against their checksums, the ledger
   and the audit log (in a fresh state: no file checked before in this process);
4. a restore of the newest snapshot into an empty store, checked to hold the same
   clean rows as the store it came from.

A readable table, then, on the last line, one JSON object with the figures
(``ratio``: bytes written by the first backup over the incremental one's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_incremental import child_append, child_generate
from dirty_table import TOML_NAME

PASSPHRASE = "benchmark passphrase, not a secret"


def _timed(step):
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start


def run(directory: Path, rows: int, change: float, seed: int) -> dict:
    import polars as pl

    from client import integrity
    from client.pipeline.prepare import prepare
    from client.privacy.ledger_chain import LedgerChain
    from client.retention.backup import backup
    from client.retention.restore import restore
    from client.site_audit import site_audit
    from client.store import SiteStore
    from common.config import load_site_config

    child_generate(directory, rows, seed)
    config = load_site_config(directory / TOML_NAME)
    prepare(config)
    target = directory / "backups"
    first, first_s = _timed(lambda: backup(config, target, PASSPHRASE))
    added = child_append(directory, max(1, round(rows * change)), seed + 1, rows * 2)
    prepare(config)
    second, second_s = _timed(lambda: backup(config, target, PASSPHRASE))

    def verify() -> int:
        integrity._CHECKED.clear()  # as a fresh `fedlife-site verify` process would
        files = SiteStore(config.store_dir).verify_latest()
        assert site_audit(config).verify() is None
        LedgerChain(config.store_dir).releases()
        return sum(max(0, n) for n in files.values())

    checked, verify_s = _timed(verify)
    kept = SiteStore(config.store_dir).read("clean").sort("_row_id")
    store_bytes = sum(p.stat().st_size for p in config.store_dir.rglob("*") if p.is_file())
    config.store_dir.rename(directory / "store-lost")
    restored, restore_s = _timed(lambda: restore(config, target, PASSPHRASE))
    again = SiteStore(config.store_dir).read("clean").sort("_row_id")
    restored_bytes = sum(p.stat().st_size for p in config.store_dir.rglob("*") if p.is_file())
    same = kept.equals(again.select(kept.columns))
    assert same, "the restored clean table differs from the backed-up one"
    return {
        "rows": rows,
        "rows_changed": added["rows"],
        "store_mib": store_bytes / 2**20,
        "backup_s": first_s,
        "backup_written_mib": first.bytes_written / 2**20,
        "backup_files": first.files,
        "incremental_backup_s": second_s,
        "incremental_written_mib": second.bytes_written / 2**20,
        "incremental_files_copied": second.copied,
        "verify_s": verify_s,
        "verify_files": checked,
        "restore_s": restore_s,
        "restore_written_mib": restored_bytes / 2**20,
        "restore_files": restored.files,
        "same_rows": same,
        "ratio": first.bytes_written / max(1, second.bytes_written),
        "polars_threads": pl.thread_pool_size(),
    }


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options.add_argument("--rows", type=int, default=1_000_000)
    options.add_argument("--change", type=float, default=0.01, help="share of rows appended")
    options.add_argument("--seed", type=int, default=0)
    options.add_argument("--keep", type=Path, default=None, help="work here, keep it")
    args = options.parse_args(argv)
    directory = args.keep or Path(tempfile.mkdtemp(prefix="bench-backup-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(directory, args.rows, args.change, args.seed)
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"backup benchmark: {figures['rows']:,} rows, store {figures['store_mib']:.1f} MiB")
    print(f"{'step':<22}{'wall s':>9}{'written MiB':>13}{'files':>7}")
    for step, wall, written, files in (
        ("backup", "backup_s", "backup_written_mib", "backup_files"),
        ("incremental backup", "incremental_backup_s", "incremental_written_mib", None),
        ("verify", "verify_s", None, "verify_files"),
        ("restore", "restore_s", "restore_written_mib", "restore_files"),
    ):
        shown = "-" if written is None else f"{figures[written]:.2f}"
        count = figures["incremental_files_copied"] if files is None else figures[files]
        print(f"{step:<22}{figures[wall]:>9.2f}{shown:>13}{count:>7}")
    print(
        f"rows changed: {figures['rows_changed']:,}; restored rows identical: "
        f"{figures['same_rows']}; first/incremental bytes: {figures['ratio']:.0f}x "
        f"(cpus {os.cpu_count()})"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
