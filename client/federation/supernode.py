"""``flower-supernode`` under watch: its log passes through, a refused key ends in one line.

A SuperNode whose key the coordinator does not know exits with Flower's block
``Exit Code: 305 / Failed to initialize the connection to the SuperLink. / [code: 2004]
Failed to activate SuperNode.``, which names neither the key nor what to check. The
site's ``join`` runs the SuperNode as a child, forwards its log, holds back an exit
block once one starts, and replaces a refused activation with one line: which key (its
file and SHA256 fingerprint, as ``ssh-keygen -lf`` prints it) and the two causes Flower
folds into that code.

The SuperNode writes into an unlinked temporary file that ``join`` reads by offset, not
into a pipe: the SuperNode starts ``flower-superexec`` (and it ClientApps), which inherit
its output and outlive it by a moment or, on a loaded machine, much longer. A pipe reader
waits for all of them to close it, and they watch the SuperNode's PID, which stays taken
(a zombie) until ``join`` reaps it: a reader that waits for the pipe's end waits forever.
Here the SuperNode's own exit status is the end, it is reaped at once, and what it left
running (its process group) is stopped by that group's id.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_private_key,
)

from common.errors import NodeKeyRefusedError

# Flower's ApiErrorCode.FLEET_NODE_ACTIVATION_FAILED, as the SuperNode prints it.
ACTIVATION_REFUSED = "[code: 2004]"
# The first line of flwr_exit's block; the lines after it belong to the same exit.
EXIT_BLOCK = b"Exit Code:"
# Signals join passes on (as what the SuperNode says goodbye to): Ctrl-C reaches join
# alone, since the SuperNode has its own process group; SIGHUP would kill it mid-word.
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM}
FORWARDED[signal.SIGHUP] = signal.SIGTERM
_PR_SET_PDEATHSIG = 1
_READ_BYTES = 1 << 16


def run_supernode(
    command: list[str], *, coordinator: str, key: Path | None, poll_s: float = 0.2
) -> int:
    """Run ``command`` (flower-supernode) to its end, its log on stderr; its exit code.

    Parameters
    ----------
    command : the SuperNode's command line (``JoinPlan.command``).
    coordinator : the SuperLink's ``host:port`` (named in the error).
    key : the site's private key file (None: insecure, no key to name).
    poll_s : seconds between two looks at the SuperNode's log and status.

    Returns
    -------
    The SuperNode's exit code; ``128 + N`` where signal N ended it, as a shell reports.

    Raises
    ------
    NodeKeyRefusedError : the coordinator refused to activate the node's key.
    """
    with tempfile.TemporaryFile(prefix="fedlife-supernode-") as log:
        log_out = LogForwarder(log.fileno())
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - join starts no thread before it
        )

        def forward(number: int, _frame: FrameType | None) -> None:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, FORWARDED[signal.Signals(number)])

        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
        try:
            while (code := process.poll()) is None:
                log_out.pump()
                time.sleep(poll_s)
            log_out.pump()  # all the SuperNode wrote is in the file once it has ended
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if process.poll() is None:  # join itself failed: do not leave the node behind
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            stop_group(process.pid)
        held = log_out.finish()
    if is_key_refused(held.decode(errors="replace")):
        raise NodeKeyRefusedError(refused_message(coordinator, key))
    _show(held)
    return code if code >= 0 else 128 - code


class LogForwarder:
    """Copy what a file gains to stderr, line by line, holding back Flower's exit block.

    It reads with ``os.pread`` at its own offset: the writers' shared file offset stays
    theirs. Parameters: ``fd``, the open log file.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.offset = 0
        self.partial = b""
        self.held = b""

    def pump(self) -> None:
        """Forward every complete line written since the last call."""
        while chunk := os.pread(self.fd, _READ_BYTES, self.offset):
            self.offset += len(chunk)
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            for line in lines:
                self._take(line + b"\n")

    def finish(self) -> bytes:
        """The held-back exit block (and any last unterminated line): the caller decides."""
        self.pump()
        if self.partial:
            self._take(self.partial)
            self.partial = b""
        return self.held

    def _take(self, line: bytes) -> None:
        if self.held or EXIT_BLOCK in line:
            self.held += line
        else:
            _show(line)


def stop_group(pgid: int) -> None:
    """SIGTERM what is left of the SuperNode's process group (its SuperExec, ClientApps).

    The group id is the SuperNode's PID; Linux hands a PID out again only once no
    group uses it as its id, so this never reaches anyone else's process.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)


def is_key_refused(log: str) -> bool:
    """Whether the SuperNode's log says the coordinator refused to activate its key."""
    return ACTIVATION_REFUSED in log and "Failed to activate SuperNode" in log


def refused_message(coordinator: str, key: Path | None) -> str:
    """The one line a refused key ends with: which key, what to check."""
    which = "this site's key" if key is None else f"the key {key} ({fingerprint(key)})"
    return (
        f"coordinator {coordinator} refused {which}: either it is not one the coordinator "
        "registered (check that --bundle is the bundle provisioned for this site by the "
        "coordinator's current provisioning, and compare `ssh-keygen -lf site.pub` with "
        "the coordinator's certs/sites/<site>/site.pub), or this site is still online from "
        "a session that ended under 60 s ago (join again in a minute)"
    )


def fingerprint(key: Path) -> str:
    """``SHA256:...`` of the key's public half, as ``ssh-keygen -lf`` prints it."""
    try:
        private = load_ssh_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return "unreadable"
    public = private.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _show(data: bytes) -> None:
    if data:
        sys.stderr.buffer.write(data)
        sys.stderr.buffer.flush()


def _die_with_parent() -> None:
    """In the child: end with ``join`` even when it is killed (no orphaned SuperNode)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the supervisor stops it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
