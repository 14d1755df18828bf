"""``flower-supernode`` under watch: its log passes through, a refused key ends in one line.

A SuperNode whose key the coordinator does not know exits with Flower's block
``Exit Code: 305 / Failed to initialize the connection to the SuperLink. / [code: 2004]
Failed to activate SuperNode.``, which names neither the key nor what to check. The
site's ``join`` runs the SuperNode as a child, forwards every line of its log, holds
back an exit block once one starts, and replaces a refused activation with one line:
which key (its file and SHA256 fingerprint, as ``ssh-keygen -lf`` prints it) and the
two causes Flower folds into that code.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_private_key,
)

from common.errors import NodeKeyRefusedError

# Flower's ApiErrorCode.FLEET_NODE_ACTIVATION_FAILED, as the SuperNode prints it.
ACTIVATION_REFUSED = "[code: 2004]"
# The first line of flwr_exit's block; the lines after it belong to the same exit.
EXIT_BLOCK = "Exit Code:"
_PR_SET_PDEATHSIG = 1


def run_supernode(command: list[str], *, coordinator: str, key: Path | None) -> int:
    """Run ``command`` (flower-supernode) to its end; its exit code.

    Parameters
    ----------
    command : the SuperNode's command line (``JoinPlan.command``).
    coordinator : the SuperLink's ``host:port`` (named in the error).
    key : the site's private key file (None: insecure, no key to name).

    Raises
    ------
    NodeKeyRefusedError : the coordinator refused to activate the node's key.
    """
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
    )
    forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    for sig in forwarded:  # a supervisor's stop reaches the SuperNode, which says goodbye
        signal.signal(sig, lambda number, _frame: process.send_signal(number))
    held: list[bytes] = []
    try:
        assert process.stdout is not None  # noqa: S101 - PIPE was asked for
        for line in process.stdout:
            if held or EXIT_BLOCK.encode() in line:
                held.append(line)
            else:
                _show(line)
        code = process.wait()
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
    text = b"".join(held).decode(errors="replace")
    if is_key_refused(text):
        raise NodeKeyRefusedError(refused_message(coordinator, key))
    for line in held:
        _show(line)
    return code if code >= 0 else 128 - code


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


def _show(line: bytes) -> None:
    sys.stderr.buffer.write(line)
    sys.stderr.buffer.flush()


def _die_with_parent() -> None:
    """In the child: end with ``join`` even when it is killed (no orphaned SuperNode)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the supervisor stops it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
