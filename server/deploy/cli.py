"""``fedlife-coord provision | start | stop | run``: a real federation over TLS."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from common.audit import AuditLog
from common.cli import err_console, one_line_errors, progress_bar
from common.errors import ConfigError, RunDirError
from common.he_keys import SECRET_CONTEXT_FILE
from common.run_config import RunConfig
from server.deploy import coordinator
from server.deploy.launch import FLOWER_LOG, launch, launch_config
from server.deploy.launch import flower_log as flower_log_path
from server.deploy.provision import DEFAULT_PORT, Provisioned, join_command, provision
from server.report.progress import round_line
from server.report.terminal import print_report
from server.run_dir import RunDirectory

console = Console()
STATE = typer.Option(..., "--state", help="The coordinator's state folder (database, PIDs, log).")


@one_line_errors
def provision_command(
    out: Path = typer.Option(..., "--out", help="New folder for the CA, certificates and bundles."),
    sites: str = typer.Option(..., "--sites", help="Comma-separated site names, e.g. a,b,c."),
    host: str = typer.Option("127.0.0.1", help="DNS name or IP address sites connect to."),
    port: int = typer.Option(DEFAULT_PORT, help="The SuperLink's port."),
    *,
    he: bool = typer.Option(
        False,
        "--he",
        help="Also make the encrypted aggregation key: its secret CKKS context goes into "
        "each site bundle only, the public one into OUT for the coordinator.",
    ),
) -> None:
    """Make the federation's CA, the coordinator's TLS certificate and one bundle per site."""
    names = [s.strip() for s in sites.split(",") if s.strip()]
    provisioned = provision(out, names, host, port, he=he)
    AuditLog(out / "audit", "coordinator").append(
        "provision", sites=names, host=host, port=port, he_key_id=provisioned.he_key_id
    )
    table = Table(title=f"provisioned {out}")
    table.add_column("site")
    table.add_column("bundle (send it to the site, privately)")
    for site, bundle in provisioned.sites.items():
        table.add_row(site, str(bundle))
    console.print(table)
    if provisioned.he_key_id:
        console.print(
            f"encrypted aggregation key {provisioned.he_key_id}: the secret CKKS context is in "
            f"each site bundle ({SECRET_CONTEXT_FILE}); only the public one is in "
            f"{provisioned.he_public}, for the coordinator (runs with he = true copy it)",
            highlight=False,
        )
    console.print(f"each site joins from its bundle with:\n  {join_command(provisioned.address)}")
    console.print(f"start the coordinator with:\n  fedlife-coord start --certs {out} --state DIR")


@one_line_errors
def start_command(
    state: Path = STATE,
    certs: Path | None = typer.Option(None, help="The folder from fedlife-coord provision."),
    host: str = typer.Option(
        "0.0.0.0",
        help="Interface the SuperLink listens on: 0.0.0.0 = every interface (sites on other "
        "machines reach it), 127.0.0.1 = this machine only.",
    ),
    port: int | None = typer.Option(None, help="Port (default: the provisioned one)."),
    *,
    insecure: bool = typer.Option(
        False, "--insecure", help="No TLS, no node authentication (testing only)."
    ),
) -> None:
    """Start Flower's SuperLink with TLS, node authentication and a state database."""
    if insecure:
        err_console.print(
            "[bold red]WARNING: --insecure: no TLS and no node authentication. Anyone who "
            "reaches the port reads every model update and can join as a site. Use only on "
            "a trusted test network.[/bold red]"
        )
        provisioned = None
    elif certs is None:
        raise ConfigError(
            "--certs DIR is needed (from fedlife-coord provision); --insecure only for testing"
        )
    else:
        provisioned = Provisioned.load(certs)
    started = coordinator.start(state, provisioned, host, port)
    mode = "INSECURE" if started.insecure else "TLS + node authentication"
    _audit(state).append("start", address=started.address, mode=mode, keys=len(started.nodes))
    everywhere = " (every network interface; --host 127.0.0.1 keeps it local)"
    console.print(
        f"SuperLink pid {started.pid} listening on {started.address}"
        f"{everywhere if started.host in ('0.0.0.0', '::') else ''} ({mode}); "
        f"{len(started.nodes)} site key(s) registered",
        highlight=False,
    )


@one_line_errors
def stop_command(state: Path = STATE) -> None:
    """Stop the coordinator's SuperLink (and the runs it hosts)."""
    stopped = coordinator.stop(state)
    _audit(state).append("stop", pid=stopped.pid)
    console.print(f"stopped SuperLink pid {stopped.pid}", highlight=False)


@one_line_errors
def run_command(
    state: Path = STATE,
    run_dir: Path | None = typer.Option(None, help="Run directory (default: runs/<timestamp>)."),
    resume: Path | None = typer.Option(
        None, help="Continue this stopped run from its last checkpoint."
    ),
    rounds: int | None = typer.Option(None, help="Training rounds (num-server-rounds)."),
    test_data: Path | None = typer.Option(
        None,
        help="CSV the coordinator evaluates on each round: a header and rows like a site's "
        "raw CSV (the feature columns and the label, raw values, missing markers allowed).",
    ),
    run_config: str = typer.Option(
        "", help="More run config as JSON, e.g. '{\"min-train-sites\": 2}'."
    ),
    *,
    flower_log: bool = typer.Option(
        False,
        "--flower-log",
        help="Show Flower's log instead of the progress bar (it is otherwise kept in "
        "RUN_DIR/flwr-run.log).",
    ),
) -> None:
    """Run the fedlife app on the started federation; writes the same run dir as a simulation."""
    started = coordinator.CoordinatorState.load(state)
    overrides = _overrides(run_config)
    if rounds is not None:
        overrides["num-server-rounds"] = rounds
    if test_data is not None:
        overrides["test-data"] = str(test_data.resolve())
    config = launch_config(started, run_dir, resume, overrides)
    _audit(state).append("run", run_dir=str(config["run-dir"]), resume=resume is not None)
    run = RunDirectory(config["run-dir"])
    if flower_log:
        launch(started, config)
        where = "see the log above"
    else:
        _launch_with_progress(started, config)
        where = f"see {run.path / FLOWER_LOG}"
    if not (run.path / "summary.json").exists():
        raise RunDirError(
            f"{run.path}: the run wrote no summary ({where}); "
            f"continue it with fedlife-coord run --state {state} --resume {run.path}"
        )
    print_report(run.read_json("summary.json"), console)


def _launch_with_progress(started: coordinator.CoordinatorState, config: dict) -> int:
    """The run with a bar of its rounds (a line per round where stderr is no terminal)."""
    total = RunConfig.from_flower(config, source="fedlife-coord run").num_server_rounds
    done = len(RunDirectory(config["run-dir"]).completed_rounds()) if config.get("resume") else 0
    with progress_bar("federated rounds", "{task.completed}/{task.total}") as progress:
        waiting = f"profile and statistics rounds (Flower's log: {flower_log_path(config)})"
        task = progress.add_task(waiting, total=total, completed=done)

        def on_round(record: dict) -> None:
            line = round_line(record)
            progress.update(task, completed=record["round"], description=line)
            if progress.disable:
                console.print(line, highlight=False, markup=False, soft_wrap=True)

        return launch(started, config, on_round=on_round)


def _audit(state: Path) -> AuditLog:
    """The coordinator's own audit log (each run also keeps one in its run dir)."""
    return AuditLog(Path(state) / "audit", "coordinator")


def _overrides(text: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"--run-config: not JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise ConfigError("--run-config: expected a JSON object of run config keys")
    return value


def register(app: typer.Typer) -> None:
    """Add the deployment commands to ``fedlife-coord``."""
    app.command("provision")(provision_command)
    app.command("start")(start_command)
    app.command("stop")(stop_command)
    app.command("run")(run_command)
