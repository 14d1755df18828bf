"""``join``'s watch over its SuperNode, with stand-in SuperNodes (small Python processes).

The refused key itself is tested against a real SuperLink (test_join.py); these tests
pin what a real SuperLink cannot provoke on demand: a SuperNode that leaves a process
holding its output open, signals reaching the SuperNode, and its end with ``join``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from client.federation.supernode import LogForwarder, fingerprint, run_supernode
from common.errors import NodeKeyRefusedError

ROOT = Path(__file__).resolve().parents[2]
# What flower-supernode 1.42 prints when the SuperLink does not know its key.
REFUSED_BLOCK = """\
ERROR :     Exit Code: 305
Failed to initialize the connection to the SuperLink.
[code: 2004] Failed to activate SuperNode.
SuperNode failed to establish a connection with the SuperLink.

For more information, visit: <https://flower.ai/docs/framework/1.42/en/ref-exit-codes/305.html>
"""


def stand_in(body: str) -> list[str]:
    """A SuperNode stand-in: Python running ``body`` (unbuffered, like a log handler)."""
    return [sys.executable, "-u", "-c", textwrap.dedent(body)]


def gone(pid: int, within_s: float) -> bool:
    """Whether ``pid`` ends (or is a zombie nobody reaps yet) within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_refused_key_ends_at_once_although_a_child_holds_the_log(capfd, tmp_path):
    """The hang this design removes: the SuperNode's SuperExec outlives it with its output."""
    key = tmp_path / "site.key"
    command = stand_in(f"""
        import subprocess, sys
        held = subprocess.Popen(["sleep", "300"])  # inherits the SuperNode's output
        print(f"INFO :      Starting Flower SuperNode (superexec {{held.pid}})")
        sys.stdout.write({REFUSED_BLOCK!r})
        sys.exit(1)
    """)
    started = time.monotonic()
    with pytest.raises(NodeKeyRefusedError) as refused:
        run_supernode(command, coordinator="127.0.0.1:9092", key=key)
    assert time.monotonic() - started < 20  # was: forever
    message = str(refused.value)
    assert message.startswith("coordinator 127.0.0.1:9092 refused the key")
    assert f"{key} (unreadable)" in message and "ssh-keygen -lf" in message
    shown = capfd.readouterr().err
    assert "Starting Flower SuperNode" in shown  # the log before the exit passes through
    assert "Exit Code" not in shown and "2004" not in shown  # Flower's block, replaced
    held = int(re.search(r"superexec (\d+)", shown).group(1))
    try:
        assert gone(held, within_s=10)  # the SuperNode's process group is stopped with it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(held, signal.SIGKILL)


def test_another_exit_is_shown_as_flower_wrote_it_and_its_code_returned(capfd):
    command = stand_in("""
        import sys
        print("INFO :      Starting Flower SuperNode")
        sys.stdout.write("ERROR :     Exit Code: 300\\nSomething else went wrong.")
        sys.exit(7)
    """)
    assert run_supernode(command, coordinator="h:1", key=None) == 7
    shown = capfd.readouterr().err
    assert shown.index("Starting") < shown.index("Exit Code: 300")
    assert shown.endswith("Something else went wrong.")  # the last line, unterminated


def test_the_log_is_forwarded_while_the_supernode_runs(tmp_path):
    log = tmp_path / "log"
    with open(log, "w+b") as handle:
        forwarder = LogForwarder(handle.fileno())
        handle.write(b"one\ntw")
        handle.flush()
        forwarder.pump()
        assert (forwarder.offset, forwarder.partial) == (6, b"tw")
        handle.write(b"o\nINFO : Exit Code: 1\nafter\n")
        handle.flush()
        assert forwarder.finish() == b"INFO : Exit Code: 1\nafter\n"
        assert handle.tell() == log.stat().st_size  # the writer's offset never moved


SUPERVISED = """
import signal, sys, time
from pathlib import Path
def goodbye(number, _frame):
    print(f"SuperNode got {signal.Signals(number).name}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, goodbye)
signal.signal(signal.SIGINT, goodbye)
Path(sys.argv[1]).write_text(str(__import__("os").getpid()))
while True:
    time.sleep(0.1)
"""


def supervise(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """``join``'s watch in its own process over a SuperNode stand-in; both PIDs."""
    ready = tmp_path / "supernode.pid"
    command = [sys.executable, "-u", "-c", SUPERVISED, str(ready)]
    join = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from client.federation.supernode import run_supernode; "
            f"sys.exit(run_supernode({command!r}, coordinator='h:1', key=None))",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        assert join.poll() is None and time.monotonic() < deadline, join.communicate()
        time.sleep(0.05)
    return join, int(ready.read_text())


@pytest.mark.parametrize(
    ("sent", "received"),
    [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT"), (signal.SIGHUP, "SIGTERM")],
)
def test_a_signal_to_join_reaches_the_supernode_which_says_goodbye(tmp_path, sent, received):
    join, supernode = supervise(tmp_path)
    join.send_signal(sent)
    _, err = join.communicate(timeout=60)
    assert join.returncode == 0, err  # the SuperNode's own exit code
    assert f"SuperNode got {received}" in err
    assert gone(supernode, within_s=10)


def test_the_supernode_ends_with_a_killed_join(tmp_path):
    join, supernode = supervise(tmp_path)
    join.kill()
    join.communicate(timeout=60)
    assert gone(supernode, within_s=10)  # PR_SET_PDEATHSIG: no orphaned SuperNode


def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", tmp_path / "k"],
        check=True,
    )
    listed = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "k.pub"], capture_output=True, text=True, check=True
    )
    assert fingerprint(tmp_path / "k") == listed.stdout.split()[1]


def test_the_supernode_process_ends_with_its_main_function_despite_a_live_thread():
    """flower-supernode's HTTP thread is no daemon: when its main function raised (it
    once missed ``flower-superexec``), the process, and join with it, never ended."""
    body = """
        import importlib, threading, time
        flower = importlib.import_module("flwr.supernode.cli.flower_supernode")

        def failing():  # Flower's order: the HTTP thread first, then the node's start
            threading.Thread(target=time.sleep, args=(600,), name="http").start()
            raise FileNotFoundError("No such file or directory: 'flower-superexec'")

        flower.flower_supernode = failing
        from client.federation import supernode_process
        supernode_process.main()
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    env.pop("FEDLIFE_DEBUG", None)
    # A process that hangs ends the test here (TimeoutExpired); the thread sleeps 600 s.
    done = subprocess.run(stand_in(body), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: the SuperNode stopped: FileNotFoundError: "
        "No such file or directory: 'flower-superexec'"
    )


def test_the_supernode_process_finds_this_environments_superexec():
    """Flower starts ``flower-superexec`` by name: from this environment, whatever PATH."""
    body = """
        import importlib, shutil
        flower = importlib.import_module("flwr.supernode.cli.flower_supernode")

        flower.flower_supernode = lambda: print(shutil.which("flower-superexec"))
        from client.federation import supernode_process
        supernode_process.main()
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(stand_in(body), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(Path(sys.executable).parent / "flower-superexec")
