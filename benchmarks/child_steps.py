"""Running a benchmark step in a fresh interpreter, and measuring its peak memory.

Shared by the benchmarks whose steps each run in their own process (see
``bench_prepare.py``'s docstring for why ``VmHWM`` and not ``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def peak_mib() -> float:
    """This process's peak resident set since exec (VmHWM, Linux), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(script: str | Path, step: str, directory: Path, *options: str) -> dict:
    """Run ``script --child step`` in a fresh interpreter; add its ``ru_maxrss`` from ``wait4``."""
    command = [sys.executable, str(Path(script).resolve()), "--child", step]
    command += ["--dir", str(directory), *options]
    # Output goes to files, not pipes: nothing can block the child while we wait4.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{step} step failed ({process.returncode}):\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["rusage_maxrss_mib"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # whole process, imports included
    return result
