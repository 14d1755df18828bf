"""``fedlife-coord report RUN_DIR``: (re)write a run's self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

from common.cli import one_line_errors
from common.errors import RunDirError
from server.run_dir import RunDirectory


@one_line_errors
def report_command(run_dir: Path) -> None:
    """Write RUN_DIR/report.html: metrics, participation, privacy, quality, drift, fairness."""
    run = RunDirectory(run_dir)
    if not (run.path / "run.json").is_file():
        raise RunDirError(f"{run_dir}: not a fedlife run directory (no run.json)")
    from server.report.html import write_report  # matplotlib: only for this command

    path = write_report(run)
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
