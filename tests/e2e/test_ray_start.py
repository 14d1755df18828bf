"""A private Ray node that times out starting is stopped and started once more.

Ray gives a new node 30 s to register with its GCS; a loaded 2-core machine once took
longer and failed a simulation (clean clone 16, session 8). Here the first start's
registration check comes 31 s late on Ray's clock: the only thing faked is time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
import ray
import ray._private.node as ray_node
import ray._private.services as ray_services

from simulations.ray_runtime import private_ray

pytestmark = pytest.mark.e2e


class LateClock:
    """``time`` as ray._private.node sees it, ``offset`` seconds ahead on its monotonic clock."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __getattr__(self, name: str):
        return getattr(time, name)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_a_node_that_times_out_starting_is_stopped_then_started_again(private_env, monkeypatch):
    clock = LateClock()
    before = set(psutil.Process().children(recursive=True))
    first_start: set[psutil.Process] = set()
    get_node = ray_services.get_node

    def late_first_registration(*args, **kwargs):
        if not first_start:
            first_start.update(set(psutil.Process().children(recursive=True)) - before)
            clock.offset += 31
            raise RuntimeError("node not registered yet")
        return get_node(*args, **kwargs)

    monkeypatch.setattr(ray_node, "time", clock)
    monkeypatch.setattr(ray_services, "get_node", late_first_registration)

    with private_ray(num_cpus=1):
        assert first_start, "the first start's registration was never checked"
        assert not [p for p in first_start if p.is_running()]  # stopped, by PID
        assert ray.get(ray.remote(lambda: 6 * 7).remote()) == 42


def test_a_private_instances_workers_inherit_its_settings_and_the_caller_keeps_its_own(
    private_env, monkeypatch
):
    """One thread per worker, this tree importable, no telemetry: set in the environment the
    private node starts with, then put back as it was."""
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("PYTHONPATH", raising=False)

    def seen_by_a_worker() -> tuple[str, str, str]:
        import os

        names = ("OMP_NUM_THREADS", "FLWR_TELEMETRY_ENABLED", "PYTHONPATH")
        return tuple(os.environ.get(name, "") for name in names)

    with private_ray(num_cpus=1):
        threads, telemetry, path = ray.get(ray.remote(seen_by_a_worker).remote())

    assert (threads, telemetry) == ("1", "0")
    assert str(Path(__file__).resolve().parents[2]) in path.split(os.pathsep)
    assert os.environ["OMP_NUM_THREADS"] == "4"
    assert "PYTHONPATH" not in os.environ
