"""Stopping a subprocess at a moment that may last only milliseconds.

A test that polls for a moment (a file appearing, a library being loaded) beside a
loaded suite can see it too late and signal a process that has moved on. Run in short
slices, stopped (SIGSTOP) while the test looks, the process cannot get past the moment
between the check and the test's signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

SLICE_S = 0.01


def ctrl_c_as_in_a_terminal() -> None:
    """A subprocess's ``preexec_fn``: SIGINT at its default action, as in an operator's
    shell. A test suite started as a background job inherits SIGINT ignored (POSIX), and
    a Python started so never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_when(process: subprocess.Popen, reached: Callable[[], bool], *, wait_s: float) -> None:
    """Run ``process`` in short slices until ``reached()``; return with the process
    stopped (SIGSTOP) right there, or once it ends or ``wait_s`` passes. The caller
    sends its signal, then SIGCONT."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and process.poll() is None:
        os.kill(process.pid, signal.SIGSTOP)
        if reached():
            return
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(SLICE_S)
