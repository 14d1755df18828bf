"""A simulation's ``report.md``: its headline figures and the per-site table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.report.terminal import COLUMNS, site_rows


def write_report(summary: dict[str, Any], path: Path) -> Path:
    """``report.md``: the run's headline figures and the per-site table."""
    lines = [
        f"# fedlife simulation {summary['run_dir']}",
        "",
        f"- dataset `{summary['dataset']}`, model `{summary['model']}`, "
        f"{summary['sites']} sites, partition `{summary['partition']}`",
        f"- test accuracy {summary['test_accuracy']}, {summary['rounds']} rounds, "
        f"{summary['wall_s']} s",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(row) + " |" for row in site_rows(summary)),
        "",
    ]
    path.write_text("\n".join(lines))
    return path
