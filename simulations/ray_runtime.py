"""A private Ray instance for one simulation, or an explicitly named cluster."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import ray


@contextmanager
def private_ray(num_cpus: int | None = None, address: str | None = None) -> Iterator[dict]:
    """Start (and afterwards stop) a Ray instance of our own.

    ``address=None`` starts a new local instance (``address="local"``), never one a
    temp dir happens to record. Its temp dir is ``$RAY_TMPDIR`` if set, else a fresh
    directory that is removed afterwards. Yields Flower's backend ``init_args``.
    """
    owned_tmp = None
    temp_dir = os.environ.get("RAY_TMPDIR")
    if not temp_dir:
        owned_tmp = temp_dir = tempfile.mkdtemp(prefix="fedlife-ray-")
    init_args = {
        "address": address or "local",
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1", "FLWR_TELEMETRY_ENABLED": "0"}},
    }
    if address is None:
        init_args["num_cpus"] = num_cpus or os.cpu_count() or 1
        init_args["_temp_dir"] = temp_dir
    ray.init(**init_args)
    try:
        yield init_args
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if owned_tmp:
            shutil.rmtree(owned_tmp, ignore_errors=True)
