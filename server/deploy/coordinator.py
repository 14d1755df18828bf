"""The coordinator's processes: Flower's own SuperLink, with TLS and node authentication.

``start`` launches ``flower-superlink`` detached (TLS with the provisioned server
certificate, ``--enable-supernode-auth``, its state database in the state folder)
and, beside it, the ``flower-superexec`` that runs the ServerApps, the two sharing a
secret: in Flower 1.42 the Runtime API listens on the same public port as the Fleet
API, and without the secret anyone reaching it could claim a run's ServerApp task.
It waits until the SuperLink answers, writes the connection into ``$FLWR_HOME/config.toml`` (as
``flwr`` expects in Flower 1.42) and registers every provisioned site's public key
with ``flwr supernode register``. What it started and the sites' node IDs go to
``STATE/coordinator.json``, so ``fedlife-coord run`` and ``stop`` find them; a
restart on the same state folder keeps the runs, nodes and keys of the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from common.atomic_files import write_atomically
from common.cli import console_script
from common.errors import ConfigError, CoordinatorError
from server.deploy.provision import Provisioned

STATE_FILE = "coordinator.json"
CONNECTION = "fedlife"
READY_TIMEOUT_S = 60.0


@dataclass
class CoordinatorState:
    """What ``start`` launched; read back by ``run`` and ``stop``.

    Parameters
    ----------
    pid : the flower-superlink process (its own session; stop it by this PID).
    host, port : where it listens (Fleet, Control and Runtime APIs share the port).
    ca : the CA certificate clients verify it with ('' when insecure).
    insecure : whether it runs without TLS and node authentication.
    database : its state database.
    nodes : site name -> the node ID its registered key got.
    started : when it started (UTC, ISO 8601).
    superexec_pid : the SuperExec that runs the ServerApps (0: the SuperLink's own).
    """

    pid: int
    host: str
    port: int
    ca: str
    insecure: bool
    database: str
    nodes: dict[str, str] = field(default_factory=dict)
    started: str = ""
    superexec_pid: int = 0

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def save(self, state_dir: Path) -> None:
        write_atomically(state_dir / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: str | Path) -> CoordinatorState:
        path = Path(state_dir) / STATE_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError):
            raise CoordinatorError(
                f"{path}: no coordinator state (run fedlife-coord start --state {state_dir})"
            ) from None

    def is_running(self) -> bool:
        return superlink_alive(self.pid)


def superlink_alive(pid: int) -> bool:
    """Whether ``pid`` is a live flower-superlink (not a recycled PID)."""
    return _cmdline_has(pid, "flower-superlink")


def _cmdline_has(pid: int, name: str) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and any(
            name in part for part in process.cmdline()
        )
    except psutil.Error:
        return False


def start(
    state_dir: str | Path,
    certs: Provisioned | None,
    host: str = "0.0.0.0",
    port: int | None = None,
) -> CoordinatorState:
    """Start the SuperLink (TLS + node auth unless ``certs`` is None) and register the sites.

    Parameters
    ----------
    state_dir : the coordinator's state folder (database, log, coordinator.json).
    certs : the provisioning folder; None runs insecure (no TLS, no node auth).
    host : the interface to listen on.
    port : the port (default: the one provisioned).
    """
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    previous = _previous(state_dir)
    if previous is not None and previous.is_running():
        raise CoordinatorError(f"a SuperLink of {state_dir} already runs (pid {previous.pid})")
    if port is None:
        if certs is None:
            raise ConfigError("--port is needed with --insecure (nothing was provisioned)")
        port = certs.port
    database = state_dir / "state.db"
    command = _superlink_command(state_dir, database, certs, host, port)
    process = _spawn(command, state_dir, "superlink.log")
    state = CoordinatorState(
        pid=process.pid,
        host="127.0.0.1" if host in ("0.0.0.0", "::") else host,
        port=port,
        ca=str((certs.out / "ca.pem").resolve()) if certs else "",
        insecure=certs is None,
        database=str(database),
        nodes=dict(previous.nodes) if previous else {},
        started=datetime.now(UTC).isoformat(),
    )
    state.save(state_dir)
    _wait_until_ready(state, process, state_dir / "superlink.log")
    if certs is not None:
        superexec = [
            console_script("flower-superexec"),
            "--runtime-api-address",
            state.address,
            "--root-certificates",
            state.ca,
            "--superexec-auth-secret-file",
            str(_superexec_secret(state_dir)),
            "--parent-pid",  # it exits when the SuperLink does
            str(process.pid),
        ]
        state.superexec_pid = _spawn(superexec, state_dir, "superexec.log").pid
        state.save(state_dir)
    write_connection(state)
    if previous is not None:
        stop_orphaned_runs()
    if certs is not None:
        for site in certs.sites:
            if site not in state.nodes:
                state.nodes[site] = register(state, certs.public_key(site), site)
        state.save(state_dir)
    return state


def _superlink_command(
    state_dir: Path, database: Path, certs: Provisioned | None, host: str, port: int
) -> list[str]:
    command = [console_script("flower-superlink"), "--host", host, "--port", str(port)]
    command += ["--database", str(database), "--disable-runtime-dependency-installation"]
    if certs is None:
        return [*command, "--insecure"]
    return [
        *command,
        "--ssl-ca-certfile",
        str((certs.out / "ca.pem").resolve()),
        "--ssl-certfile",
        str((certs.out / "server.pem").resolve()),
        "--ssl-keyfile",
        str((certs.out / "server.key").resolve()),
        "--enable-supernode-auth",
        # Our own SuperExec, with a shared secret: the Runtime API shares the public
        # port, and without a secret anyone reaching it could claim a ServerApp task.
        "--isolation",
        "process",
        "--superexec-auth-secret-file",
        str(_superexec_secret(state_dir)),
    ]


def stop(state_dir: str | Path, timeout: float = 15.0) -> CoordinatorState:
    """Stop the SuperLink of ``state_dir`` and what it started (by PID), gracefully."""
    state = CoordinatorState.load(state_dir)
    if not state.is_running():
        raise CoordinatorError(f"no SuperLink of {state_dir} is running (pid {state.pid} is gone)")
    kill(state, timeout)
    return state


def kill(state: CoordinatorState, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Signal the SuperExec (and its ServerApps) and the SuperLink, with their children."""
    stop_trees(live_pids(state), timeout, sig)


def live_pids(state: CoordinatorState) -> list[int]:
    """The coordinator's processes still running: its SuperExec and its SuperLink."""
    pids = []
    if state.superexec_pid and _cmdline_has(state.superexec_pid, "flower-superexec"):
        pids.append(state.superexec_pid)
    if state.is_running():
        pids.append(state.pid)
    return pids


def _spawn(command: list[str], state_dir: Path, log_name: str) -> subprocess.Popen:
    """A detached process (its own session) logging to ``state_dir/log_name``."""
    with open(state_dir / log_name, "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=state_dir, start_new_session=True
        )


def _superexec_secret(state_dir: Path) -> Path:
    """The SuperLink/SuperExec shared secret, made once, readable by its owner only."""
    path = state_dir / "superexec.secret"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
    return path


def stop_tree(pid: int, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to ``pid`` and its descendants; SIGKILL whatever outlives ``timeout``."""
    stop_trees([pid], timeout, sig)


def stop_trees(pids: Iterable[int], timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """``stop_tree`` for several processes at once: one wait, not one per process."""
    processes = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            processes += [root, *root.children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def write_connection(state: CoordinatorState) -> Path:
    """The ``fedlife`` SuperLink connection in ``$FLWR_HOME/config.toml`` (Flower's own writer)."""
    from flwr.cli.flower_config import write_superlink_connection
    from flwr.cli.typing import SuperLinkConnection

    connection = (
        SuperLinkConnection(name=CONNECTION, address=state.address, insecure=True)
        if state.insecure
        else SuperLinkConnection(name=CONNECTION, address=state.address, root_certificates=state.ca)
    )
    write_superlink_connection(connection)
    return flwr_home() / "config.toml"


def flwr_home() -> Path:
    return Path(os.environ.get("FLWR_HOME") or Path.home() / ".flwr")


def register(state: CoordinatorState, public_key: Path, site: str) -> str:
    """Register one site's public key with ``flwr supernode register``; return its node ID."""
    result = flwr(["supernode", "register", str(public_key), CONNECTION, "--name", site])
    try:
        reply = json.loads(result.stdout)
    except json.JSONDecodeError:
        reply = {}
    if not reply.get("success"):
        detail = reply.get("error-message") or (result.stdout + result.stderr).strip()
        raise CoordinatorError(f"registering {site}'s key failed: {' '.join(detail.split())}")
    return str(reply["node-id"])


def stop_orphaned_runs() -> list[str]:
    """Stop the runs the database still holds as unfinished; return their IDs.

    Called when a SuperLink restarts on its state folder: no ServerApp survived the
    old one, so an unfinished run was orphaned by a crash. Left so, the SuperLink
    keeps handing its queued messages to the sites, which train for a run nobody
    aggregates before they reach the live one (a resumed run's round then waited on
    them past its timeout).
    """
    listed = flwr(["list", CONNECTION])
    try:
        runs = json.loads(listed.stdout).get("runs", [])
    except json.JSONDecodeError:
        runs = []
    orphaned = [r["run-id"] for r in runs if not str(r["status"]).startswith("finished")]
    for run_id in orphaned:
        flwr(["stop", run_id, CONNECTION])
    return orphaned


def flwr(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Flower's own CLI (JSON output), in this environment."""
    return subprocess.run(
        [console_script("flwr"), *args, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _previous(state_dir: Path) -> CoordinatorState | None:
    try:
        return CoordinatorState.load(state_dir)
    except CoordinatorError:
        return None


def _wait_until_ready(state: CoordinatorState, process: subprocess.Popen, log: Path) -> None:
    """Poll the SuperLink's health route over its own TLS until it answers."""
    scheme = "http" if state.insecure else "https"
    context = None if state.insecure else ssl.create_default_context(cafile=state.ca)
    url = f"{scheme}://{state.address}/health"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise CoordinatorError(
                f"flower-superlink exited with code {process.returncode}: {tail[0]} (log: {log})"
            )
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    stop_tree(process.pid)
    raise CoordinatorError(f"flower-superlink did not answer on {url} in {READY_TIMEOUT_S:.0f} s")
