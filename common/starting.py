"""Ctrl-C while a command is still importing its modules: one line, not a traceback.

A CLI's imports take a second or more (polars, deltalake, Flower). Python raises
``KeyboardInterrupt`` wherever the interrupt finds it, and before the command's own
error handling exists that is a traceback out of some library's import.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from common.errors import StoppedByUser


@contextmanager
def interruptible_start(command: str) -> Iterator[None]:
    """Import the command's modules inside this block; Ctrl-C there ends in one line.

    Parameters
    ----------
    command : the name the operator typed (``fedlife-site``), for the message.
    """
    try:
        yield
    except KeyboardInterrupt:
        # Nothing runs at import time that reads or writes a store.
        print(f"error: {command} interrupted while starting; nothing was done", file=sys.stderr)
        sys.exit(StoppedByUser.exit_code)
