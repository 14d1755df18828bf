"""Ctrl-C while a CLI is still importing its libraries ends in one line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.conftest import console_script
from tests.slices import ctrl_c_as_in_a_terminal, stop_when

# A compiled library every CLI imports (pydantic, for the config models) and the entry
# point does not: once it is mapped, the command's imports are under way.
IMPORTING = "pydantic_core"


def loaded(pid: int, library: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return library in maps.read()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("command", ["fedlife-site", "fedlife-coord", "fedlife-sim"])
def test_ctrl_c_while_importing_is_one_line(cli_env, command):
    process = subprocess.Popen(
        [console_script(command), "--help"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    stop_when(process, lambda: loaded(process.pid, IMPORTING), wait_s=60)
    assert process.poll() is None, "the command ended before its imports could be interrupted"
    process.send_signal(signal.SIGINT)
    os.kill(process.pid, signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        f"error: {command} interrupted while starting; nothing was done"
    ]
    assert stdout == ""
