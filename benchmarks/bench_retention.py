"""Benchmark ``retain`` on a large Delta table: expire, archive, erase, vacuum.

    python benchmarks/bench_retention.py --rows 1000000 [--erase 3] [--expired 0.2] [--seed 0]

The script writes a site (id, visit time, 6 float features, a 0/1 label) whose
``clean`` table holds ``--rows`` rows as one Delta version, ``--expired`` of them
seen before the retention age, and records ``--erase`` erasure requests for
existing subjects. It times ``client.retention.retain.retain`` (the work of ``fedlife-site
retain``) twice, each on a fresh site: retention alone (expired rows archived to
zstd Parquet and deleted: ``wall_s``), then retention with the erasure requests
(every distinct id hashed with the site key, the subjects' rows deleted from every
version, history vacuumed and truncated: ``erase_wall_s``); each followed by a
second pass that finds nothing to do. Polars is limited to 2 threads (and the
process to 2 cores where the OS allows) to match the 2-core target.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CORES = 2
os.environ.setdefault("POLARS_MAX_THREADS", str(CORES))
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > CORES:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:CORES])

import numpy as np  # noqa: E402 - after the thread limit
import polars as pl  # noqa: E402

from client.retention.archive import Archive  # noqa: E402
from client.retention.erasure import ErasureRequests, site_key, subject_digest  # noqa: E402
from client.retention.retain import archive_dir, archive_key, retain  # noqa: E402
from client.store import SiteStore  # noqa: E402
from common.config import load_site_config  # noqa: E402

FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]
SITE_TOML = """
[site]
name = "bench"
raw = "raw.csv"
[schema.columns.patient]
type = "text"
role = "id"
[schema.columns.seen]
type = "datetime"
role = "timestamp"
{features}
[schema.columns.num]
type = "int"
role = "label"
values = ["0", "1"]
[retention]
max_age_days = 365
archive = true
keep_versions_days = 7
"""


def build_site(root: Path, rows: int, expired: float, seed: int) -> Path:
    """Write site.toml and a ``rows``-row clean table; return the toml's path."""
    rng = np.random.default_rng(seed)
    features = "\n".join(
        f'[schema.columns.{f}]\ntype = "float"\nmin = 0\nmax = 1' for f in FEATURES
    )
    path = root / "site.toml"
    path.write_text(SITE_TOML.format(features=features))
    (root / "raw.csv").write_text("")
    now = datetime.now(UTC).replace(tzinfo=None)
    old = rng.random(rows) < expired
    days = np.where(old, rng.integers(400, 3000, rows), rng.integers(0, 300, rows))
    seen = np.datetime64(now, "us") - days.astype("timedelta64[D]").astype("timedelta64[us]")
    frame = pl.DataFrame(
        {
            "patient": [f"P{i:08d}" for i in range(rows)],
            "seen": seen,
            **{f: rng.random(rows) for f in FEATURES},
            "num": rng.integers(0, 2, rows),
        }
    )
    config = load_site_config(path)
    SiteStore(config.store_dir).write("clean", frame, {"operation": "clean"})
    return path


def measure(rows: int, expired: float, erase: int, seed: int) -> dict[str, float | int]:
    """One fresh site, ``erase`` erasure requests, one timed ``retain`` and a second pass."""
    root = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    try:
        config = load_site_config(build_site(root, rows, expired, seed))
        key = site_key(config.store_dir)
        subjects = [f"P{i:08d}" for i in range(0, rows, max(1, rows // 7))][:erase]
        ErasureRequests(config.store_dir).add([subject_digest(key, s) for s in subjects])
        started = time.perf_counter()
        report = retain(config)
        wall_s = time.perf_counter() - started
        started = time.perf_counter()
        retain(config)
        second_pass_s = time.perf_counter() - started
        clean = next(t for t in report.tables if t.table == "clean")
        left = SiteStore(config.store_dir).read("clean").height
        sealed = Archive(archive_dir(config), key=archive_key(config))
        archived = sealed.read(Path(clean.archived)).height if clean.archived else 0
        assert left == rows - clean.expired - clean.erased and archived == clean.expired
        return {
            "wall_s": round(wall_s, 3),
            "second_pass_s": round(second_pass_s, 3),
            "expired_rows": clean.expired,
            "archived_rows": archived,
            "erased_rows": clean.erased,
            "rows_left": left,
            "files_vacuumed": clean.files_vacuumed,
            "versions_dropped": len(clean.versions_dropped),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--erase", type=int, default=3, help="erasure requests (second run)")
    parser.add_argument("--expired", type=float, default=0.2, help="share of rows past the age")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    retention = measure(args.rows, args.expired, 0, args.seed)
    erasure = measure(args.rows, args.expired, args.erase, args.seed)
    print(f"retain on a {args.rows:,}-row Delta table, {CORES} cores (wall seconds, rows)")
    print(f"  {'':<18}{'retention':>12}{f'+ erase {args.erase}':>12}")
    for name in retention:
        print(f"  {name:<18}{retention[name]:>12}{erasure[name]:>12}")
    figures = {
        "rows": args.rows,
        **retention,
        "erase_subjects": args.erase,
        **{f"erase_{name}": value for name, value in erasure.items()},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cores": CORES,
        "target_s": 10.0,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
