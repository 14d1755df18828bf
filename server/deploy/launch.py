"""Launch the fedlife app on a started coordinator: ``flwr run`` with its connection.

The run goes to the SuperLink that ``fedlife-coord start`` wrote into
``$FLWR_HOME/config.toml``; only the provisioned sites' node IDs are allowed to take
part (``allowed-nodes``), whatever else registered itself on the Control API. The
ServerApp writes the same run directory as a simulation. With ``he = true`` the
provisioned public HE context is copied into the run directory first (never a secret
one).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.cli import console_script
from common.errors import ConfigError, CoordinatorError, EncryptionError
from common.he_keys import PUBLIC_CONTEXT_FILE
from common.run_config import RunConfig
from server.deploy.coordinator import CONNECTION, CoordinatorState
from server.he_aggregation import load_public_context
from server.report.progress import RoundWatcher, watch_process
from server.run_dir import RunDirectory, default_run_dir, writable_folder

APP_DIR = Path(__file__).resolve().parents[2]
FLOWER_LOG = "flwr-run.log"


def launch_config(
    state: CoordinatorState,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run config of a new run, or of ``resume``'s run continued.

    Parameters
    ----------
    state : the started coordinator (its registered nodes are the allowed ones).
    run_dir : where a new run writes (default: ``runs/<timestamp>``, made absolute).
    resume : a stopped run's directory; its recorded config is reused.
    overrides : run config keys (hyphenated) to set, e.g. ``{"num-server-rounds": 3}``.
    """
    if resume is not None:
        run = RunDirectory.open_for_resume(resume)
        config = {**run.read_json("run.json")["config"], "resume": True}
        config["run-dir"] = str(run.path.resolve())
    else:
        config = {"run-dir": str(Path(run_dir or default_run_dir()).resolve())}
    config.update(overrides or {})
    if state.nodes:
        config["allowed-nodes"] = ",".join(sorted(state.nodes.values()))
    if RunConfig.from_flower(config, source="fedlife-coord run").he:  # one line if wrong
        install_public_context(state, Path(config["run-dir"]))
    return config


def install_public_context(state: CoordinatorState, run_dir: Path) -> Path:
    """Encrypted aggregation: the provisioned public HE context into ``run_dir``, where
    the ServerApp reads it; refused in one line when provisioning made none or when the
    file holds a secret key (the coordinator must never hold one).

    Parameters
    ----------
    state : the started coordinator (its CA's folder is the provisioning folder).
    run_dir : the run's directory (made if needed; a resumed run's copy is checked).
    """
    target = run_dir / PUBLIC_CONTEXT_FILE
    source = target if target.is_file() else Path(state.ca).parent / PUBLIC_CONTEXT_FILE
    if not state.ca or not source.is_file():
        raise EncryptionError(
            f"he = true, but {source if state.ca else 'the insecure coordinator'} has no "
            f"public HE context: provision with fedlife-coord provision --he"
        )
    data = source.read_bytes()
    load_public_context(data)  # a context with a secret key never reaches the run
    if source != target:
        writable_folder(run_dir, what="run directory")
        target.write_bytes(data)
    return target


def launch(
    state: CoordinatorState,
    config: dict[str, Any],
    timeout: float | None = None,
    *,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """``flwr run APP fedlife --stream`` with ``config``; its exit code.

    Parameters
    ----------
    state : the started coordinator.
    config : the run config (``launch_config``).
    timeout : seconds before the run is given up (None: no limit).
    on_round : called with each round the run directory gains; Flower's log then goes
        to ``<run_dir>/flwr-run.log`` instead of our stdout.
    """
    if not state.is_running():
        raise CoordinatorError(
            f"the SuperLink (pid {state.pid}) is not running; start it with fedlife-coord start"
        )
    command = [
        console_script("flwr"),
        "run",
        str(APP_DIR),
        CONNECTION,
        "--stream",
        "--run-config",
        render_run_config(config),
    ]
    if on_round is None:
        return subprocess.run(command, timeout=timeout, check=False).returncode
    log = flower_log(config)
    watcher = RoundWatcher(config["run-dir"], skip_existing=bool(config.get("resume")))
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            return watch_process(process, watcher, on_round, deadline=deadline)
        finally:
            if process.poll() is None:  # Ctrl-C or the timeout: no orphaned flwr run
                process.terminate()
                process.wait(timeout=30)


def flower_log(config: dict[str, Any]) -> Path:
    """Where ``flwr run``'s log goes while a progress bar shows the run: in its run dir."""
    return writable_folder(config["run-dir"], what="run directory") / FLOWER_LOG


def render_run_config(config: dict[str, Any]) -> str:
    """``k1=v1 k2=v2`` with TOML values (strings quoted), as ``flwr run --run-config`` reads."""
    parts = []
    for key, value in config.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int | float):
            rendered = repr(value)
        elif isinstance(value, str):
            if '"' in value or "'" in value or "\\" in value:
                raise ConfigError(f"{key}: {value!r} holds a quote or backslash (not passable)")
            rendered = f'"{value}"'
        else:
            raise ConfigError(f"{key}: {value!r} is not a run config value")
        parts.append(f"{key}={rendered}")
    return " ".join(parts)
