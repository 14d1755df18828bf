"""A private Ray instance for one simulation, or an explicitly named cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psutil
import ray

from common.errors import ConfigError
from simulations.site_jobs import check_cluster_offers, site_resources

OBJECT_STORE_BYTES = 256 * 1024**2
# Ray gives a new node 30 s to register with its GCS (a constant in ray._private.node).
# A loaded machine can take longer; a second start then usually succeeds.
START_TRIES = 2


@contextmanager
def private_ray(
    num_cpus: int | None = None, address: str | None = None, sites: Sequence[str] = ()
) -> Iterator[dict]:
    """Start (and afterwards stop) a Ray instance of our own.

    Parameters
    ----------
    num_cpus : CPUs of the private instance (default: :func:`simulation_cpus`).
    address : an existing cluster to attach to; None starts a new local instance
        (``address="local"``), never one a temp dir happens to record. Its temp dir
        is ``$RAY_TMPDIR`` if set, else a fresh directory removed afterwards.
    sites : the virtual sites; the private instance's one node offers each site's
        custom resource (``simulations.site_jobs``), a cluster must offer them.

    Yields Flower's backend ``init_args``.
    """
    owned_tmp = None
    temp_dir = os.environ.get("RAY_TMPDIR")
    if not temp_dir:
        owned_tmp = temp_dir = tempfile.mkdtemp(prefix="fedlife-ray-")
    worker_env = {
        "OMP_NUM_THREADS": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        # Workers import this very tree, not whatever copy is installed.
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    init_args: dict = {
        "address": address or "local",
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    if address is None:
        init_args["num_cpus"] = num_cpus or simulation_cpus()
        init_args["_temp_dir"] = temp_dir
        init_args["resources"] = site_resources(list(sites))
        # Only small messages cross the object store; Ray's default (30 % of RAM) is
        # shared memory a many-site run on a small machine cannot spare.
        init_args["object_store_memory"] = OBJECT_STORE_BYTES
    else:
        check_reachable(address)
        init_args["runtime_env"] = {"env_vars": worker_env}
    # Keep today's device handling and Ray's notice about changing it out of the output.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    with _on_loopback(enabled=address is None), _inherited(worker_env, enabled=address is None):
        _start(init_args)
    try:
        if address is not None:
            check_cluster_offers(list(sites))
        yield init_args
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if owned_tmp:
            shutil.rmtree(owned_tmp, ignore_errors=True)


def _start(init_args: dict) -> None:
    """``ray.init``, tried again once if the node timed out starting; the processes the
    failed try started are stopped first (Ray leaves them running)."""
    for attempt in range(1, START_TRIES + 1):
        before = set(psutil.Process().children(recursive=True))
        try:
            ray.init(**init_args)
            return
        except Exception as error:  # Ray raises a bare Exception for this one
            if attempt == START_TRIES or "timed out during startup" not in str(error):
                raise
            left = set(psutil.Process().children(recursive=True)) - before
            for process in left:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            psutil.wait_procs(left, timeout=10)


@contextmanager
def _inherited(env: dict[str, str], *, enabled: bool) -> Iterator[None]:
    """Set ``env`` while a private instance starts: its workers inherit it.

    A private instance's workers are children of its raylet, which is started with this
    process's environment. A job-level ``runtime_env`` would do the same through Ray's
    runtime-env agent: each worker then starts via a set-up process, and the worker Ray
    starts ahead of the job cannot serve it, so a simulation paid for one more worker
    importing Ray and the site code (docs/benchmarks.md, "What one simulation costs").
    """
    if not enabled:
        yield
        return
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def simulation_cpus() -> int:
    """CPUs a private instance offers: ``$FEDLIFE_SIM_CPUS`` if set, else all of this machine's.

    Each CPU becomes one Ray worker that imports torch and the site code, so on a
    machine shared with other work fewer of them cost less than they parallelise.
    """
    setting = os.environ.get("FEDLIFE_SIM_CPUS", "")
    if not setting:
        return os.cpu_count() or 1
    if not setting.isdigit() or int(setting) < 1:
        raise ConfigError(f"FEDLIFE_SIM_CPUS must be a whole number >= 1, got '{setting}'")
    return int(setting)


@contextmanager
def _on_loopback(*, enabled: bool) -> Iterator[None]:
    """Let a private instance register its node on 127.0.0.1.

    A private instance is this machine's alone, yet on Linux Ray registers its node on
    the address its outbound route uses (a network interface) and maps an explicit
    ``_node_ip_address="127.0.0.1"`` back to it. Ray keeps to loopback only where it
    thinks clusters are unsupported (its ``ENABLE_RAY_CLUSTER`` switch, read when the
    node starts): switched off for the start of a private instance, on again after.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = not enabled and saved
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast (not after Ray's minutes of retries) when a cluster address is dead."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address must be HOST:PORT, got '{address}'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"Ray cluster at {address} is not reachable ({reason})") from None
