"""``fedlife-site join``: this site becomes a Flower SuperNode of the coordinator's federation.

It checks the site config and the bundle from ``fedlife-coord provision``, then runs
Flower's SuperNode under its watch (:mod:`client.federation.supernode`, in a process of
:mod:`client.federation.supernode_process`): TLS verified
against the bundle's CA, authenticated with the bundle's private key, and a node config
that points the ClientApp at this site's ``site.toml`` and at its bundle (where
``fedlife-coord provision --he`` put the secret HE context of encrypted aggregation).
Raw rows never leave: the ClientApp answers with model arrays, metrics and aggregates
over at least ``min_group_size`` rows.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from client.federation import supernode_process
from client.federation.supernode import run_supernode
from client.site_audit import site_audit
from common import keys
from common.cli import err_console, one_line_errors
from common.config import load_site_config
from common.errors import ConfigError, CoordinatorError, EncryptionError
from common.he_keys import SECRET_CONTEXT_FILE

# Long enough for a coordinator that starts after its sites; short enough to notice a typo.
DEFAULT_MAX_WAIT_S = 300.0


@dataclass(frozen=True)
class JoinPlan:
    """How to start this site's SuperNode.

    Parameters
    ----------
    site_config : the site's site.toml (validated).
    coordinator : the SuperLink's ``host:port``.
    bundle : the site's bundle (ca.pem, site.key); None with ``insecure``.
    clientappio_port : the local port the SuperNode serves its ClientApps on.
    egress_log : a folder to record every message the site sends, or None.
    """

    site_config: Path
    coordinator: str
    bundle: Path | None
    clientappio_port: int
    egress_log: Path | None = None

    def command(self) -> list[str]:
        node_config = f'site-config="{self.site_config}"'
        if self.bundle is not None:  # the ClientApp loads the secret HE context from it
            node_config += f' {keys.BUNDLE}="{self.bundle}"'
        if self.egress_log is not None:
            node_config += f' {keys.EGRESS_LOG}="{self.egress_log}"'
        # Flower's SuperNode, in a process that cannot outlive its main function.
        command = [sys.executable, "-m", supernode_process.__name__]
        command += ["--superlink", self.coordinator]
        command += ["--node-config", node_config]
        command += ["--host", "127.0.0.1", "--port", str(self.clientappio_port)]
        if self.bundle is None:
            return [*command, "--insecure"]
        return [
            *command,
            "--root-certificates",
            str(self.bundle / "ca.pem"),
            "--auth-supernode-private-key",
            str(self.bundle / "site.key"),
        ]


def plan_join(
    config: Path,
    coordinator: str,
    bundle: Path | None,
    clientappio_port: int = 0,
    egress_log: Path | None = None,
) -> JoinPlan:
    """Check everything a SuperNode needs before starting one; one line if not."""
    load_site_config(config)
    _check_address(coordinator)
    for path in (str(config), str(egress_log or ""), str(bundle or "")):
        if '"' in path or " " in path:
            raise ConfigError(f"{path}: a path with spaces or quotes cannot go in a node config")
    if bundle is not None:
        check_bundle(bundle)
        bundle = bundle.resolve()
    return JoinPlan(
        site_config=config.resolve(),
        coordinator=coordinator,
        bundle=bundle,
        clientappio_port=clientappio_port or _free_port(),
        egress_log=egress_log.resolve() if egress_log else None,
    )


def check_bundle(bundle: Path) -> None:
    """The bundle holds the CA certificate, a NIST-curve EC private key and, if
    provisioned for encrypted aggregation, a secret HE context."""
    if not (bundle / "ca.pem").is_file():
        raise ConfigError(
            f"{bundle}: no ca.pem; without the federation's CA the coordinator cannot be "
            "verified (use the bundle from fedlife-coord provision)"
        )
    key_path = bundle / "site.key"
    try:
        key = load_ssh_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(f"{key_path}: missing; the site's private key is in its bundle") from None
    except (ValueError, TypeError, OSError) as error:
        raise ConfigError(f"{key_path}: not an OpenSSH private key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path}: not an EC key (Flower needs a NIST curve, e.g. P-384)")
    secret = bundle / SECRET_CONTEXT_FILE
    if secret.is_file():  # encrypted aggregation: a context without its secret key is useless
        from client.privacy.he import load_context  # TenSEAL and torch: only for HE bundles

        try:
            load_context(secret.read_bytes(), need_secret=True)
        except EncryptionError as error:
            raise EncryptionError(f"{secret}: {error}") from None


@one_line_errors
def join_command(
    config: Path = typer.Option(..., "--config", "-c", help="The site's site.toml."),
    coordinator: str = typer.Option(..., help="The coordinator's SuperLink, HOST:PORT."),
    bundle: Path | None = typer.Option(
        None, help="This site's bundle from fedlife-coord provision (ca.pem, site.key)."
    ),
    *,
    insecure: bool = typer.Option(
        False, "--insecure", help="No TLS and no node authentication (testing only)."
    ),
    clientappio_port: int = typer.Option(
        0, help="Local port for the SuperNode's ClientApps (default: a free one)."
    ),
    egress_log: Path | None = typer.Option(
        None, help="Record every message this site sends in DIR/egress.jsonl."
    ),
    max_wait: float = typer.Option(
        DEFAULT_MAX_WAIT_S,
        "--max-wait",
        help="Seconds to wait for the coordinator to answer before giving up with one line "
        "(0: wait forever). Once joined, the site rides out coordinator restarts.",
    ),
) -> None:
    """Join the coordinator's federation: run Flower's SuperNode with TLS and this site's key."""
    if insecure:
        err_console.print(
            "[bold red]WARNING: --insecure: no TLS, no node authentication. Anyone on the "
            "network reads the model and metrics this site sends and can pose as the "
            "coordinator. Use only on a trusted test network.[/bold red]"
        )
        bundle = None
    elif bundle is None:
        raise ConfigError("--bundle DIR is needed (or --insecure, for testing only)")
    plan = plan_join(config, coordinator, bundle, clientappio_port, egress_log)
    wait_for_coordinator(coordinator, max_wait_s=max_wait)
    command = plan.command()
    site_audit(load_site_config(plan.site_config)).append(
        "join", coordinator=coordinator, secure=not insecure
    )
    err_console.print(f"joining {coordinator} as {plan.site_config}", highlight=False)
    sys.stderr.flush()
    key = None if plan.bundle is None else plan.bundle / "site.key"
    code = run_supernode(command, coordinator=coordinator, key=key)
    if code:
        raise typer.Exit(code)


def wait_for_coordinator(address: str, *, max_wait_s: float, every_s: float = 2.0) -> None:
    """Return once ``address`` accepts a TCP connection; give up after ``max_wait_s``.

    Flower's SuperNode retries an absent SuperLink forever, one log line at a time;
    a site operator who mistyped the address would never learn it. Only the first
    connection is bounded: once joined, Flower's own retries carry the site through a
    coordinator restart.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + max_wait_s
    told = False
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(every_s, 5.0)):
                return
        except OSError as error:
            reason = error.strerror or type(error).__name__
        if max_wait_s and time.monotonic() >= deadline:
            raise CoordinatorError(
                f"coordinator {address} did not answer in {max_wait_s:g} s ({reason}); check "
                "the address and port in join.txt, that fedlife-coord start is running, and "
                "the firewall (--max-wait 0 waits forever)"
            )
        if not told:
            # stdout: stderr is kept for the one error line a failure ends with.
            typer.echo(f"waiting for the coordinator at {address} ({reason})...")
            told = True
        time.sleep(every_s)


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--coordinator: {address!r} is not HOST:PORT")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
