"""The coordinator's Flower ServerApp (``server.app:app``).

``flwr run .`` reads the run config from pyproject.toml (and ``--run-config``);
``fedlife-sim`` builds the same app with :func:`make_server_app` and its own config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from logging import INFO
from typing import Any

from flwr.app import Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from common.errors import RunDirError
from common.run_config import RunConfig
from server.deploy.allowed_nodes import AllowedNodesGrid, parse_node_ids
from server.federation import Federation, RoundObserver
from server.report.summary import summarize, summary_line
from server.run_dir import RunDirectory, default_run_dir


def run(grid: Grid, config: RunConfig, on_round: RoundObserver | None = None) -> dict[str, Any]:
    """Run the federation, then write the summary, report and plots; return the summary."""
    started = time.monotonic()
    if config.resume:
        if not config.run_dir:
            raise RunDirError("resume needs the run directory to continue (run-dir)")
        run_dir = RunDirectory.open_for_resume(config.run_dir)
    else:
        run_dir = RunDirectory.create(config.run_dir or default_run_dir())
    if config.allowed_nodes:
        # AllowedNodesGrid wraps the Grid and offers the same methods (no subclass).
        grid = AllowedNodesGrid(grid, parse_node_ids(config.allowed_nodes))  # type: ignore[assignment]
    if config.observe_only:  # retrain's query: the sites' data, no training
        # Imported here, as the report's modules are: few runs are observe-only.
        from server.lifecycle.observe_run import observe_sites_only
        from server.site_exchange import SiteExchange

        return observe_sites_only(SiteExchange(grid, config), config, run_dir)
    federation = Federation(grid, config, run_dir, on_round)
    audit = run_dir.audit()
    audit.append("run-start", run_id=federation.run_id, resume=config.resume)
    result = federation.run()
    summary = summarize(result, run_dir, time.monotonic() - started)
    # Imported here: matplotlib takes a second to import, and every CLI imports this
    # module, mostly to do something else than end a run.
    from server.report.html import write_report
    from server.report.plots import plot_run

    write_report(run_dir)
    plot_run(run_dir)
    audit.append(
        "run-end", run_id=result.run_id, rounds=len(result.rounds), stopped=result.stopped_reason
    )
    return summary


def make_server_app(
    config: RunConfig | None = None,
    on_round: RoundObserver | None = None,
    on_summary: Callable[[dict[str, Any]], None] | None = None,
) -> ServerApp:
    """A ServerApp running ``config`` (default: the Flower run config)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        run_config = config or RunConfig.from_flower(context.run_config)
        summary = run(grid, run_config, on_round)
        if on_summary is not None:
            on_summary(summary)

    return app


def log_summary_line(summary: dict[str, Any]) -> None:
    """End a run's log with its one-line summary (``flwr run --stream`` shows it)."""
    if "rounds" in summary:  # an observe-only query has no rounds to sum up
        log(INFO, summary_line(summary))


app = make_server_app(on_summary=log_summary_line)
